"""RunModel: batched Molmo 2 generation over prepared windows (the GPU actor; CPU works too)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Sequence

from vidlake.errors import VidlakeError
from vidlake.models.molmo2 import ModelRef
from vidlake.operators.prompt import INPUT_COLUMNS
from vidlake.platform.config import ModelSettings

__all__ = ["InferConfig", "RunModel"]

OUTPUT_COLUMNS = ("raw_text", "generated_tokens", "finish_reason", "infer_s", "infer_batch", "device", "dtype")


@dataclass(frozen=True)
class InferConfig:
    """Which pinned checkpoint, how it is loaded (``settings``), and how windows are batched."""

    model: ModelRef
    settings: ModelSettings = field(default_factory=ModelSettings)
    batch_size: int = 4  # windows per generate call
    max_new_tokens: int | None = None  # a cap over the rows' own (per task) limits
    ignore_eos: bool = False  # benchmarks: always generate max_new_tokens


class RunModel:
    """Prepared windows -> raw model text, columnar batch in, batch out (1:1 per row).

    Reads ``INPUT_COLUMNS`` (from BuildPrompt), ``max_new_tokens``, ``status``. Writes
    ``raw_text``, ``generated_tokens`` (up to and without the end token), ``finish_reason``
    ("stop" | "length": the answer was cut at max_new_tokens), ``infer_s`` (wall seconds of the
    generate call the row was in) and ``infer_batch`` (rows in that call), ``device``, ``dtype``,
    ``model_id``/``model_revision``; drops the input tensors. Greedy decoding; windows of mixed
    length are sorted by length and left-padded. A failing batch is retried window by window; a
    window that still fails gets ``status="error"`` (``out_of_memory`` | ``inference_failed``).

    The model loads once per worker, lazily on the first call (the constructor is cheap and
    picklable, it runs on the driver); a model that cannot load raises ``ModelLoadError``.
    ``resources`` are defaults the job applies and may override (num_gpus=0 on a CPU cluster).
    Another engine (vLLM through Ray Data's LLM API) can replace this class behind the same columns.
    """

    def __init__(self, config: InferConfig):
        self.config = config
        self.resources = {"num_gpus": 1.0, "num_cpus": 1.0, "batch_size": config.batch_size, "concurrency": 1}
        self._model = self._processor = None
        self.stats = {"load_s": 0.0, "calls": 0, "windows": 0, "generated_tokens": 0, "generate_s": 0.0}

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_model": None, "_processor": None}

    def load(self) -> None:
        """Load the processor (tokenizer, pixel normalization) and the model, once."""
        if self._model is not None:
            return
        from vidlake.models.molmo2 import load_model, load_processor
        from vidlake.models.molmo2_inputs import pixel_norm

        began = time.perf_counter()
        self._processor = load_processor(self.config.model, self.config.settings)
        self._model = load_model(self.config.model, self.config.settings)
        gen = self._model.generation_config
        eos = gen.eos_token_id if gen.eos_token_id is not None else self._processor.tokenizer.eos_token_id
        self._eos = set(eos if isinstance(eos, (list, tuple)) else [eos])
        pad = self._processor.tokenizer.pad_token_id
        self._pad = pad if pad is not None else (gen.pad_token_id if gen.pad_token_id is not None else min(self._eos))
        self._norm = pixel_norm(self._processor.video_processor)
        self.stats["load_s"] = round(time.perf_counter() - began, 3)

    def __call__(self, batch: dict[str, Sequence[Any]]) -> dict[str, list[Any]]:
        self.load()
        keys = list(batch)
        rows = [dict(zip(keys, values)) for values in zip(*(batch[k] for k in keys))]
        for row in rows:
            row.update({c: None for c in OUTPUT_COLUMNS})
            if row.setdefault("status", "ok") == "ok":  # (Ray Data may hand all-null columns over as NaN)
                row.update(error_kind=None, error=None)
        todo = sorted((r for r in rows if r.get("status", "ok") == "ok"), key=lambda r: len(r["input_ids"]))
        size = max(1, self.config.batch_size)
        for i in range(0, len(todo), size):
            self._run(todo[i : i + size])
        for row in rows:
            for column in INPUT_COLUMNS:
                row.pop(column, None)
        self.stats["calls"] += 1
        columns = list(rows[0]) if rows else keys
        return {c: [r.get(c) for r in rows] for c in columns}

    def _run(self, chunk: list[dict[str, Any]]) -> None:
        import torch

        try:
            self._generate(chunk)
        except VidlakeError:
            raise
        except Exception as exc:  # noqa: BLE001 - retry alone, then fail only the windows that fail alone
            if isinstance(exc, torch.cuda.OutOfMemoryError):
                torch.cuda.empty_cache()
            if len(chunk) > 1:
                for row in chunk:
                    self._run([row])
                return
            text = str(exc).lower()
            oom = isinstance(exc, torch.cuda.OutOfMemoryError) or "out of memory" in text or "can't allocate memory" in text
            chunk[0].update(status="error", error_kind="out_of_memory" if oom else "inference_failed",
                            error=f"{type(exc).__name__}: {exc}"[:2000])

    def _generate(self, chunk: list[dict[str, Any]]) -> None:
        import torch

        from vidlake.models.molmo2_inputs import collate

        model, tokenizer = self._model, self._processor.tokenizer
        limits = [min(int(r.get("max_new_tokens") or 256), self.config.max_new_tokens or 1 << 30) for r in chunk]
        inputs = collate(chunk, self._pad, self._norm, device=str(model.device), dtype=model.dtype)
        began = time.perf_counter()
        with torch.inference_mode():
            out = model.generate(
                **inputs, max_new_tokens=max(limits), do_sample=False,
                min_new_tokens=max(limits) if self.config.ignore_eos else None, pad_token_id=self._pad,
            )
        seconds = time.perf_counter() - began
        new = out[:, inputs["input_ids"].shape[1] :].tolist()
        for row, tokens, limit in zip(chunk, new, limits):
            tokens = tokens[:limit]
            stop = next((i for i, t in enumerate(tokens) if t in self._eos), None)
            kept = tokens if stop is None or self.config.ignore_eos else tokens[:stop]
            row.update(
                raw_text=tokenizer.decode(kept, skip_special_tokens=True), generated_tokens=len(kept),
                finish_reason="stop" if stop is not None and not self.config.ignore_eos else "length",
                infer_s=round(seconds, 6), infer_batch=len(chunk), device=str(model.device),
                dtype=str(model.dtype).removeprefix("torch."),
                model_id=self.config.model.model_id, model_revision=self.config.model.revision,
            )
            self.stats["generated_tokens"] += len(kept)
        self.stats["windows"] += len(chunk)
        self.stats["generate_s"] += seconds
