"""BuildPrompt: a window's frames + a task prompt -> Molmo 2 model inputs, prepared on CPU."""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass, field
from typing import Any

from vidlake.errors import RowError
from vidlake.models.molmo2 import ModelRef
from vidlake.models.prompts import PromptTemplate
from vidlake.operators.step import Resources, Step
from vidlake.operators.tasks import PendingTask
from vidlake.platform.config import ModelSettings

__all__ = ["BuildPrompt", "BuildRequest", "PromptConfig", "INPUT_COLUMNS", "window_time_offset"]

# What RunModel consumes; dropped by RunModel once used. A window fills the video keys, an image set the image keys.
INPUT_COLUMNS = ("input_ids", "mm_token_type_ids", "pixel_values_videos", "video_token_pooling", "video_grids",
                 "pixel_values", "image_token_pooling", "image_grids", "image_num_crops")


@dataclass(frozen=True)
class PromptConfig:
    """What to ask and with which checkpoint's processor (the same pinned revision RunModel loads).

    Either one ``template`` (+ ``query``) for every row, or the job's resolved ``tasks`` for rows
    that name theirs by ``task_key`` (ExpandTasks' column).
    """

    model: ModelRef
    template: PromptTemplate | None = None
    query: str | None = None
    max_new_tokens: int | None = None  # None: the template's
    tasks: tuple[PendingTask, ...] = ()
    settings: ModelSettings = field(default_factory=ModelSettings)

    def for_row(self, row: dict[str, Any]) -> tuple[PromptTemplate, str | None, int]:
        """(template, query, max_new_tokens) of one row."""
        key = row.get("task_key")
        if key is not None and self.tasks:
            task = next((t for t in self.tasks if t.task_key == key), None)
            if task is None:
                raise RowError("prompt_failed", f"no task with task_key {key!r} in this job")
            return task.template, task.query, task.token_limit
        if self.template is None:
            raise RowError("prompt_failed", "the row names no task_key and the operator has no default template")
        return self.template, self.query, int(self.max_new_tokens or self.template.max_new_tokens)


def window_time_offset(row: dict[str, Any]) -> float:
    """The absolute time that the model's 0.0 stands for: the window start (or its first frame, if earlier).

    Frame timestamps shown to the model are window-relative (as in training, clips start near 0);
    the parser adds this offset back, so parsed times are absolute source-video times.
    """
    times = [float(t) for t in row["timestamps_s"]]
    start = row.get("start_s")
    return min(times) if start is None else min(float(start), min(times))


class BuildPrompt(Step):
    """Window row -> model inputs (1:1), CPU. Loads the checkpoint's processor once per worker (``setup``).

    Reads ``frames`` (uint8 N x H x W x 3, upright), ``timestamps_s`` (absolute PTS), ``start_s``,
    ``end_s`` (and ``task_key`` when the config holds the job's tasks). Writes ``task``,
    ``template`` (fingerprint, part of ``task_key``), ``query``, ``prompt`` (the user text),
    ``time_offset_s``, ``max_new_tokens``, ``model_id``, ``model_revision``, the model inputs of
    ``INPUT_COLUMNS`` (pixels as resized uint8 patches; an image set's window, ``kind="set"``, goes
    through the processor's image path and fills the image keys), ``prompt_tokens``, ``visual_tokens``,
    ``prompt_s``; drops ``frames``. A row that cannot be prepared becomes an error row
    (``prompt_failed``). Rows already in error get the model's id and revision (what the failed
    window was meant for) and pass.
    """

    stage = "prompt"
    outputs = ("task", "template", "query", "prompt", "time_offset_s", "max_new_tokens", "model_id", "model_revision",
               "prompt_tokens", "visual_tokens", "prompt_s", *INPUT_COLUMNS)
    drops = ("frames",)
    sees_errors = True
    _loaded = ("_processor",)

    def __init__(self, config: PromptConfig, resources: Resources | None = None):
        super().__init__(resources)
        self.config = config
        self._processor = None

    def setup(self) -> None:
        from vidlake.models.molmo2 import load_processor, on_this_node

        on_this_node(self.config.model, self.config.settings)
        self._processor = load_processor(self.config.model, self.config.settings)  # fatal if it cannot load

    def process(self, row: dict[str, Any]) -> dict[str, Any]:
        from vidlake.models.molmo2_inputs import strip_special_tokens

        out = {**row, "model_id": self.config.model.model_id, "model_revision": self.config.model.revision}
        if row["status"] != "ok":
            return out
        template, query, limit = self.config.for_row(row)
        out.update(task=template.task, template=template.fingerprint, query=query, max_new_tokens=limit)
        processor = self._processor
        began = time.perf_counter()
        if row.get("frames") is None or len(row["frames"]) == 0:
            raise RowError("prompt_failed", "the window has no frames")
        offset = window_time_offset(row)
        end = float(row.get("end_s") or max(row["timestamps_s"]))
        clean = strip_special_tokens(query, processor.tokenizer) if query else query
        text = strip_special_tokens(template.render(clean, 0.0, end - offset), processor.tokenizer)
        with warnings.catch_warnings():  # frames from Ray's object store are read-only; torch only reads them
            warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
            inputs = self._inputs(row, text, offset)
        out.update(inputs, prompt=text, time_offset_s=offset, prompt_s=round(time.perf_counter() - began, 6))
        return out

    def _inputs(self, row: dict[str, Any], text: str, offset: float) -> dict[str, Any]:
        """The model inputs of one window or image set: transformers' processor outputs."""
        from vidlake.models.molmo2_inputs import prepare_images, prepare_window

        if row.get("kind") == "set":
            return prepare_images(self._processor, list(row["frames"]), text)
        return prepare_window(self._processor, row["frames"], row["timestamps_s"], offset, text)


class BuildRequest(BuildPrompt):
    """BuildPrompt for ``model.engine: vllm``: the same rows, but instead of the processor's outputs the
    request vLLM's engine runs the same processor on (vidlake/models/vllm_engine.py): ``request_text``
    (the chat-templated prompt with its ``<|video|>`` / ``<|image|>`` placeholders), ``request_metadata``
    (JSON: the frames' video metadata, or the image count) and the window's ``frames``, kept for the
    engine. ``prompt_tokens`` and ``visual_tokens`` are the engine's to count (RunVLLM)."""

    outputs = (*BuildPrompt.outputs, "request_text", "request_metadata")
    drops = ()

    def _inputs(self, row: dict[str, Any], text: str, offset: float) -> dict[str, Any]:
        import json

        from vidlake.models.molmo2_inputs import image_request, video_request

        if row.get("kind") == "set":
            request, images = image_request(self._processor, list(row["frames"]), text)
            metadata: dict[str, Any] = {"images": len(images)}
        else:
            request, _, metadata = video_request(self._processor, row["frames"], row["timestamps_s"], offset, text)
        return {"request_text": request, "request_metadata": json.dumps(metadata)}
