"""RunModel: batched Molmo 2 generation over prepared windows (the GPU actor; CPU works too)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from vidlake.errors import ModelLoadError, RowError, VidlakeError
from vidlake.models.molmo2 import ModelRef
from vidlake.operators.prompt import INPUT_COLUMNS
from vidlake.operators.step import Resources, Step
from vidlake.platform.config import ModelSettings

__all__ = ["InferConfig", "RunModel", "RunVLLM"]

OUTPUT_COLUMNS = ("raw_text", "generated_tokens", "finish_reason", "infer_s", "infer_batch", "device", "dtype")


@dataclass(frozen=True)
class InferConfig:
    """Which pinned checkpoint, how it is loaded (``settings``), and how windows are batched."""

    model: ModelRef
    settings: ModelSettings = field(default_factory=ModelSettings)
    batch_size: int = 4  # windows per generate call
    max_new_tokens: int | None = None  # a cap over the rows' own (per task) limits
    ignore_eos: bool = False  # benchmarks: always generate max_new_tokens


class RunModel(Step):
    """Prepared windows -> raw model text, a batch of rows in, the same rows out (the GPU actor; CPU works too).

    Reads ``INPUT_COLUMNS`` (from BuildPrompt), ``max_new_tokens``. Writes ``raw_text``,
    ``generated_tokens`` (up to and without the end token), ``finish_reason`` ("stop" | "length":
    the answer was cut at max_new_tokens), ``infer_s`` (wall seconds of the generate call the row
    was in) and ``infer_batch`` (rows in that call), ``device``, ``dtype``; drops the input tensors.
    Greedy decoding; windows of mixed length are sorted by length and left-padded; image sets (the
    image keys of ``INPUT_COLUMNS``) are batched apart from video windows. A failing batch
    is retried window by window; a window that still fails becomes an error row (``out_of_memory`` |
    ``inference_failed``).

    The model loads once per worker (``setup``: when the actor starts, so the load overlaps the
    first decodes; the constructor is cheap and picklable, it runs on the driver); a model that
    cannot load raises ``ModelLoadError``. ``model.engine: vllm`` replaces it with RunVLLM, behind the
    same columns.
    """

    stage = "infer"
    fanout = "batch"
    outputs = OUTPUT_COLUMNS
    drops = INPUT_COLUMNS
    default_resources = Resources(num_cpus=1.0, num_gpus=1.0, actor=True, batch_size=4)
    _loaded = ("_model", "_processor")

    def __init__(self, config: InferConfig, resources: Resources | None = None):
        super().__init__(resources or self.default_resources.with_(batch_size=config.batch_size))
        self.config = config
        self._model = self._processor = None
        self.counters = {"load_s": 0.0, "windows": 0, "generated_tokens": 0, "generate_s": 0.0}

    def setup(self) -> None:
        """Load the processor (tokenizer, pixel normalization) and the model, once."""
        from vidlake.models.molmo2 import load_model, load_processor, on_this_node
        from vidlake.models.molmo2_inputs import pixel_norm

        began = time.perf_counter()
        on_this_node(self.config.model, self.config.settings)
        self._processor = load_processor(self.config.model, self.config.settings)
        self._model = load_model(self.config.model, self.config.settings)
        gen = self._model.generation_config
        eos = gen.eos_token_id if gen.eos_token_id is not None else self._processor.tokenizer.eos_token_id
        self._eos = set(eos if isinstance(eos, (list, tuple)) else [eos])
        pad = self._processor.tokenizer.pad_token_id
        self._pad = pad if pad is not None else (gen.pad_token_id if gen.pad_token_id is not None else min(self._eos))
        self._norm = pixel_norm(self._processor.video_processor)
        self._image_norm = pixel_norm(self._processor.image_processor)
        self.counters["load_s"] = round(time.perf_counter() - began, 3)

    def process_batch(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        size = max(1, self.config.batch_size)
        for images in (False, True):  # video windows and image sets go to the model in batches of their own
            todo = sorted((r for r in rows if (r.get("pixel_values") is not None) == images), key=lambda r: len(r["input_ids"]))
            for i in range(0, len(todo), size):
                self._run(todo[i : i + size])
        return rows

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
            chunk[0].update(self.fail(chunk[0], RowError("out_of_memory" if oom else "inference_failed",
                                                         f"{type(exc).__name__}: {exc}")))

    def _generate(self, chunk: list[dict[str, Any]]) -> None:
        import torch

        from vidlake.models.molmo2_inputs import collate

        model, tokenizer = self._model, self._processor.tokenizer
        limits = [min(int(r.get("max_new_tokens") or 256), self.config.max_new_tokens or 1 << 30) for r in chunk]
        norm = self._image_norm if chunk[0].get("pixel_values") is not None else self._norm
        inputs = collate(chunk, self._pad, norm, device=str(model.device), dtype=model.dtype)
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
            self.counters["generated_tokens"] += len(kept)
        self.counters["windows"] += len(chunk)
        self.counters["generate_s"] += seconds


class RunVLLM(RunModel):
    """RunModel on a vLLM engine (``model.engine: vllm``; vidlake/models/vllm_engine.py): the same columns
    out, from BuildRequest's rows (``request_text``, ``request_metadata``, ``frames``), which it drops.
    Also writes ``prompt_tokens`` and ``visual_tokens``, counted by the engine. One ``vllm.LLM`` per
    actor, on the replica's GPU; each batch of windows is one ``generate`` call that vLLM schedules
    continuously. Greedy; ``ignore_eos`` generates exactly the token limit."""

    outputs = (*OUTPUT_COLUMNS, "prompt_tokens", "visual_tokens")
    drops = ("frames", "request_text", "request_metadata", *INPUT_COLUMNS)
    _loaded = ("_model", "_processor", "_llm")

    def setup(self) -> None:
        import socket

        from vidlake.models.molmo2 import _load_from, load_processor, on_this_node, pick_dtype

        try:
            from vllm import LLM
        except ImportError as exc:  # the driver has vllm (checked before any work); this GPU node has not
            raise ModelLoadError(f"model.engine is vllm, but vllm cannot be imported on node {socket.gethostname()} "
                                 f"({exc}): install it on every GPU node (docs/models.md)") from exc

        began = time.perf_counter()
        ref, settings = self.config.model, self.config.settings
        on_this_node(ref, settings)
        self._processor = load_processor(ref, settings)
        options = {"dtype": str(pick_dtype(settings, "cuda")).removeprefix("torch."), "seed": 0,
                   "limit_mm_per_prompt": {"video": 1}, "trust_remote_code": True, **settings.vllm}
        if not ref.is_local:
            options["revision"] = ref.revision
        self._llm = LLM(model=_load_from(ref, settings), **options)
        tokenizer = self._processor.tokenizer
        self._patch_id = tokenizer.convert_tokens_to_ids("<im_patch>")
        self._eos = {tokenizer.eos_token_id, *tokenizer.convert_tokens_to_ids(["<|im_end|>", "<|endoftext|>"])} - {None}
        self.counters["load_s"] = round(time.perf_counter() - began, 3)

    def process_batch(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        size = max(1, self.config.batch_size)
        for i in range(0, len(rows), size):
            self._run(rows[i : i + size])
        return rows

    def _generate(self, chunk: list[dict[str, Any]]) -> None:
        from vllm import SamplingParams

        from vidlake.models.vllm_engine import sampling_kwargs, vllm_request

        limits = [min(int(r.get("max_new_tokens") or 256), self.config.max_new_tokens or 1 << 30) for r in chunk]
        params = [SamplingParams(**sampling_kwargs(limit, self.config.ignore_eos)) for limit in limits]
        began = time.perf_counter()
        outputs = self._llm.generate([vllm_request(r) for r in chunk], params, use_tqdm=False)
        seconds = time.perf_counter() - began
        dtype = str(self._llm.llm_engine.model_config.dtype).removeprefix("torch.")
        for row, output in zip(chunk, outputs):
            answer = output.outputs[0]
            prompt_ids = output.prompt_token_ids or []
            tokens = list(answer.token_ids)
            if answer.finish_reason == "stop" and tokens and tokens[-1] in self._eos:
                tokens = tokens[:-1]  # as RunModel counts: up to and without the end token
            row.update(
                raw_text=answer.text, generated_tokens=len(tokens),
                finish_reason="length" if answer.finish_reason == "length" else "stop",
                infer_s=round(seconds, 6), infer_batch=len(chunk), device="cuda", dtype=dtype,
                prompt_tokens=len(prompt_ids), visual_tokens=sum(t == self._patch_id for t in prompt_ids),
                model_id=self.config.model.model_id, model_revision=self.config.model.revision,
            )
            self.counters["generated_tokens"] += len(tokens)
        self.counters["windows"] += len(chunk)
        self.counters["generate_s"] += seconds
