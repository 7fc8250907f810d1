"""Identities: content-addressed video ids, deterministic window ids, task keys and run ids."""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, BinaryIO

__all__ = ["TaskIdentity", "hash_stream", "new_run_id", "stable_hash", "window_id"]


def hash_stream(stream: BinaryIO, chunk_bytes: int = 8 * 1024 * 1024) -> tuple[str, int]:
    """sha256 hex digest and byte count of a binary stream, read in chunks (never whole)."""
    digest = hashlib.sha256()
    total = 0
    while chunk := stream.read(chunk_bytes):
        digest.update(chunk)
        total += len(chunk)
    return digest.hexdigest(), total


def stable_hash(payload: Any, length: int = 16) -> str:
    """Hex hash of a JSON-serialisable value, independent of dict key order."""
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:length]


def window_id(video_id: str, start_s: float, end_s: float, sampling: dict[str, Any]) -> str:
    """Deterministic id of a window: (video, span in ms, sampling settings)."""
    return stable_hash(
        {"video": video_id, "start_ms": round(start_s * 1000), "end_ms": round(end_s * 1000), "sampling": sampling}
    )


@dataclass(frozen=True)
class TaskIdentity:
    """What produced an output row: the parts of its ``task_key``. Changing any part processes the
    video again, into new rows beside the old ones; the same parts always give the same key."""

    task: str
    prompt: str  # the template's fingerprint (name@version#texthash)
    query: str | None
    model_id: str
    model_revision: str
    sampling: dict[str, Any] = field(default_factory=dict, hash=False)  # the window kind's sampling settings
    engine: str = ""  # a serving engine and its version ("vllm==0.15.1"); "" for transformers and the oracle

    @property
    def key(self) -> str:
        """The ``task_key``: a stable hash of every part. The engine enters only when it is not transformers
        (the reference path), so the keys of lakes written before engines were a choice stay as they were."""
        parts = {
            "task": self.task, "prompt": self.prompt, "query": self.query or "", "model": self.model_id,
            "revision": self.model_revision, "sampling": self.sampling,
        }
        return stable_hash({**parts, "engine": self.engine} if self.engine else parts)


def new_run_id() -> str:
    """Run id that sorts by start time: UTC time to the microsecond plus a random suffix."""
    now = datetime.now(timezone.utc)
    return f"{now:%Y%m%dT%H%M%S}.{now:%f}Z-{uuid.uuid4().hex[:6]}"
