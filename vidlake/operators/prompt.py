"""BuildPrompt: a window's frames + a task prompt -> Molmo 2 model inputs, prepared on CPU."""

from __future__ import annotations

import math
import time
import warnings
from dataclasses import dataclass, field
from typing import Any, Mapping

from vidlake.models.molmo2 import ModelRef
from vidlake.models.prompts import PromptTemplate
from vidlake.platform.config import ModelSettings

__all__ = ["BuildPrompt", "PromptConfig", "INPUT_COLUMNS", "window_time_offset"]

# What RunModel consumes; dropped by RunModel once used.
INPUT_COLUMNS = ("input_ids", "mm_token_type_ids", "pixel_values_videos", "video_token_pooling", "video_grids")


@dataclass(frozen=True)
class PromptConfig:
    """What to ask and with which checkpoint's processor (the same pinned revision RunModel loads).

    Either one ``template`` (+ ``query``) for every row, or ``templates`` by name for rows that
    name theirs (``template_name``, ``query``, ``task_max_new_tokens``: ExpandTasks' columns).
    """

    model: ModelRef
    template: PromptTemplate | None = None
    query: str | None = None
    max_new_tokens: int | None = None  # None: the template's
    templates: Mapping[str, PromptTemplate] = field(default_factory=dict)
    settings: ModelSettings = field(default_factory=ModelSettings)

    def for_row(self, row: dict[str, Any]) -> tuple[PromptTemplate, str | None, int]:
        """(template, query, max_new_tokens) of one row."""
        name = _value(row.get("template_name"))
        if name is not None:
            if name not in self.templates:
                raise KeyError(f"no prompt template {name!r} in this job")
            template = self.templates[name]
            query, limit = _value(row.get("query")), _value(row.get("task_max_new_tokens"))
            return template, query, int(limit or template.max_new_tokens)
        if self.template is None:
            raise KeyError("the row names no template_name and the operator has no default template")
        return self.template, self.query, int(self.max_new_tokens or self.template.max_new_tokens)


def _value(v: Any) -> Any:
    """None for a missing value (Ray Data turns all-null columns into NaN floats)."""
    return None if v is None or (isinstance(v, float) and math.isnan(v)) else v


def window_time_offset(row: dict[str, Any]) -> float:
    """The absolute time that the model's 0.0 stands for: the window start (or its first frame, if earlier).

    Frame timestamps shown to the model are window-relative (as in training, clips start near 0);
    the parser adds this offset back, so parsed times are absolute source-video times.
    """
    times = [float(t) for t in row["timestamps_s"]]
    start = _value(row.get("start_s"))
    return min(times) if start is None else min(float(start), min(times))


class BuildPrompt:
    """Window row -> model inputs (1:1), CPU. Loads the checkpoint's processor once per worker, lazily.

    Reads ``frames`` (uint8 N x H x W x 3, upright), ``timestamps_s`` (absolute PTS), ``start_s``,
    ``end_s``, ``status`` (and ``template_name``, ``query``, ``task_max_new_tokens`` when the config
    holds several templates). Writes ``task``, ``template`` (fingerprint, part of ``task_key``),
    ``query``, ``prompt`` (the user text), ``time_offset_s``, ``max_new_tokens``, ``model_id``,
    ``model_revision``, the model inputs of ``INPUT_COLUMNS`` (pixels as resized uint8 patches),
    ``prompt_tokens``, ``visual_tokens``, ``prompt_s``; drops ``frames``. A row that cannot be
    prepared gets ``status="error"``, ``error_kind="prompt_failed"``; rows already in error pass.
    """

    resources = {"num_cpus": 1.0}

    def __init__(self, config: PromptConfig):
        self.config = config
        self._processor = None

    def __getstate__(self) -> dict:  # ship the config, never a loaded processor
        return {"config": self.config, "_processor": None}

    def _load(self):
        if self._processor is None:
            from vidlake.models.molmo2 import load_processor

            self._processor = load_processor(self.config.model, self.config.settings)
        return self._processor

    def __call__(self, row: dict[str, Any]) -> dict[str, Any]:
        from vidlake.models.molmo2_inputs import prepare_window, strip_special_tokens

        out = {k: v for k, v in row.items() if k != "frames"}
        out.update(prompt=None, time_offset_s=None, model_id=self.config.model.model_id,
                   model_revision=self.config.model.revision, prompt_tokens=None, visual_tokens=None,
                   prompt_s=None, **{c: None for c in INPUT_COLUMNS})
        out.setdefault("status", "ok")
        out.setdefault("error_kind", None)
        out.setdefault("error", None)
        try:
            template, query, limit = self.config.for_row(row)
        except KeyError as exc:
            out.update(task=row.get("task"), template=None, max_new_tokens=None)
            if out["status"] == "ok":
                out.update(status="error", error_kind="prompt_failed", error=str(exc.args[0]))
            return out
        out.update(task=template.task, template=template.fingerprint, query=query, max_new_tokens=limit)
        if out["status"] != "ok":
            return out
        processor = self._load()  # a processor that cannot load is fatal (ModelLoadError), not a row error
        began = time.perf_counter()
        try:
            if row.get("frames") is None or len(row["frames"]) == 0:
                raise ValueError("the window has no frames")
            offset = window_time_offset(row)
            end = float(_value(row.get("end_s")) or max(row["timestamps_s"]))
            clean = strip_special_tokens(query, processor.tokenizer) if query else query
            text = strip_special_tokens(template.render(clean, 0.0, end - offset), processor.tokenizer)
            with warnings.catch_warnings():  # frames from Ray's object store are read-only; torch only reads them
                warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
                inputs = prepare_window(processor, row["frames"], row["timestamps_s"], offset, text)
        except Exception as exc:  # noqa: BLE001 - one bad window must not stop the run
            out.update(status="error", error_kind="prompt_failed", error=f"{type(exc).__name__}: {exc}")
            return out
        out.update(inputs, status="ok", prompt=text, time_offset_s=offset,
                   prompt_s=round(time.perf_counter() - began, 6))
        return out
