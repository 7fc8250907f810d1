"""AnswerFromTruth: the oracle engine's model step (``model.name: oracle:DIR``, see vidlake/models/oracle.py).

It takes the place of BuildPrompt + RunModel in the job's step list and writes the same columns, so
ParseOutput, the merge and the writer run exactly as they do behind Molmo 2.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from vidlake.errors import RowError
from vidlake.operators.infer import OUTPUT_COLUMNS
from vidlake.operators.prompt import PromptConfig, window_time_offset
from vidlake.operators.step import Resources, Step

__all__ = ["AnswerFromTruth"]


class AnswerFromTruth(Step):
    """Window row -> the answer a perfect Molmo 2 would give (1:1), from the truth in the oracle's folder.

    Reads ``timestamps_s`` (the PTS of exactly the frames sampled: nothing between them is seen),
    ``start_s``, ``end_s``, ``task_key``, ``video_id``, ``uri``, ``width``, ``height``, ``rotation``.
    Writes BuildPrompt's text columns (``task``, ``template``, ``query``, ``prompt``, ``time_offset_s``,
    ``max_new_tokens``, ``model_id``, ``model_revision``, ``prompt_tokens`` 0, ``visual_tokens`` 0,
    ``prompt_s``) and RunModel's ``OUTPUT_COLUMNS`` (``device`` "oracle"); drops ``frames``. A video the
    truth does not know becomes an error row (``not_in_truth``). Loads the truth once per worker process.
    """

    stage = "infer"
    outputs = ("task", "template", "query", "prompt", "time_offset_s", "max_new_tokens", "model_id", "model_revision",
               "prompt_tokens", "visual_tokens", "prompt_s", *OUTPUT_COLUMNS)
    drops = ("frames",)
    sees_errors = True
    default_resources = Resources(num_cpus=0.5)
    _loaded = ("_truth",)

    def __init__(self, config: PromptConfig, resources: Resources | None = None):
        super().__init__(resources)
        self.config = config
        self._truth = None

    def setup(self) -> None:
        from vidlake.models.molmo2 import on_this_node
        from vidlake.models.oracle import OracleTruth

        on_this_node(self.config.model, self.config.settings)
        self._truth = OracleTruth.load(Path(self.config.model.source))

    def process(self, row: dict[str, Any]) -> dict[str, Any]:
        from vidlake.models.oracle import oracle_answer

        model = self.config.model
        out = {**row, "model_id": model.model_id, "model_revision": model.revision}
        if row["status"] != "ok":
            return out
        began = time.perf_counter()
        template, query, limit = self.config.for_row(row)
        frames = self._truth.video(row["video_id"], row.get("uri") or "")
        if frames is None:
            raise RowError("not_in_truth", f"the oracle's truth ({model.source}) has no video {row.get('uri')}")
        offset = window_time_offset(row)
        end = float(row.get("end_s") or max(row["timestamps_s"]))
        seen = [(round((float(t) - offset) * 1000) / 1000, self._truth.at(frames, float(t)))
                for t in row["timestamps_s"]]
        width, height = int(row["width"]), int(row["height"])
        if int(row.get("rotation") or 0) % 180 == 90:
            width, height = height, width
        text = oracle_answer(template.task, query, seen, width, height)
        out.update(
            task=template.task, template=template.fingerprint, query=query, max_new_tokens=limit,
            prompt=template.render(query, 0.0, end - offset), time_offset_s=offset, prompt_tokens=0,
            visual_tokens=0, prompt_s=0.0, raw_text=text, generated_tokens=len(text.split()),
            finish_reason="stop", infer_s=round(time.perf_counter() - began, 6), infer_batch=1, device="oracle",
            dtype="none",
        )
        return out
