"""ExpandTasks: one sampled window -> one row per task still to run on it (fan-out, CPU, cheap)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["ExpandTasks", "PendingTask", "runs_on"]


@dataclass(frozen=True)
class PendingTask:
    """A (task, prompt template, query) as the job resolved it, with its ``task_key``."""

    task_key: str
    task: str
    template: str  # template name in the job's prompt registry
    query: str | None
    windows: str  # "slow" | "fast": which windows the task runs on
    max_new_tokens: int | None = None


@dataclass(frozen=True)
class ExpandTasks:
    """Reads ``pending_task_keys`` (the tasks not yet done for this video), ``kind``,
    ``window_count``; writes one row per matching task with ``task_key``, ``task``,
    ``template_name``, ``query``, ``task_max_new_tokens`` and ``windows_total`` (how many windows
    the writer must see before it commits this video's rows for the task). Rows in error fan out
    like the others, so each task records the failure.
    """

    tasks: tuple[PendingTask, ...]
    resources = {"num_cpus": 0.1}

    def __call__(self, row: dict[str, Any]) -> list[dict[str, Any]]:
        pending = set(row.get("pending_task_keys") or ())
        out = []
        for t in self.tasks:
            if t.task_key not in pending or not runs_on(t, row):
                continue
            total = row.get("window_count") if t.windows == "slow" else 1
            out.append({
                **{k: v for k, v in row.items() if k != "pending_task_keys"}, "task_key": t.task_key, "task": t.task, "template_name": t.template, "query": t.query,
                "task_max_new_tokens": t.max_new_tokens, "windows_total": total or 1,
            })
        return out


def runs_on(task: PendingTask, row: dict[str, Any]) -> bool:
    """Slow tasks run on every dense window; a fast task on the fast window, or on the only window of a
    video short enough to be one window (it has no fast window). A video that failed before it had
    windows (kind is null) reaches every task, so each records the failure."""
    kind = row.get("kind")
    if kind is None:
        return True
    if task.windows == "slow":
        return kind == "slow"
    return kind == "fast" or (kind == "slow" and row.get("window_count") == 1)
