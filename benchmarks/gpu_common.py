"""What the parts of the GPU benchmark (benchmarks/gpu.py) share: the checkout on ``sys.path``, one random
window and its caption prompt, timing on a device, freeing CUDA memory, error text, ending a worker's
process tree, number formatting.

Imported first by every gpu_*.py module: it puts the checkout on ``sys.path`` before vidlake is imported.
"""

from __future__ import annotations

import gc
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
sys.path.append(str(ROOT))  # run from anywhere; PYTHONPATH (a pinned copy) wins

from vidlake.models.molmo2_inputs import strip_special_tokens  # noqa: E402
from vidlake.models.prompts import PromptRegistry  # noqa: E402


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def window(frames: int, side: int = 378, seed: int = 0):
    """Random uint8 frames and 2 fps timestamps 0.0, 0.5, ... (one window at the start of a video)."""
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (frames, side, side, 3), dtype=np.uint8), [k * 0.5 for k in range(frames)]


def caption_text(tokenizer, times: list[float]) -> str:
    """The caption prompt as BuildPrompt renders it for a window starting at 0.0 (window-relative times)."""
    return strip_special_tokens(PromptRegistry().get("caption").render(None, 0.0, times[-1] + 0.5), tokenizer)


def timed(fn, device: str) -> tuple[float, object]:
    sync(device)
    began = time.perf_counter()
    out = fn()
    sync(device)
    return time.perf_counter() - began, out


def free_cuda() -> None:
    gc.collect()
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        try:
            torch.cuda.empty_cache()
        except RuntimeError as exc:  # a CUDA error left by a failed batch: what comes next reports its own
            print(f"empty_cache: {error_text(exc)}", file=sys.stderr, flush=True)


def error_text(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0][:300] if lines else ''}"


def end_tree(proc: subprocess.Popen) -> None:
    """End a process started in a session of its own and everything in it (a vLLM worker's engine-core
    process, even once the worker has exited), so its GPU memory is freed."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    if proc.poll() is None:
        proc.kill()
    proc.wait()


def num(value, digits: int = 1) -> str:
    return "-" if value is None else f"{value:.{digits}f}"
