"""ExpandTasks: one sampled window -> one row per task still to run on it (fan-out, CPU, cheap)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from vidlake.models.prompts import PromptTemplate
from vidlake.operators.appearance import GROUNDED_TASKS
from vidlake.operators.step import Resources, Step
from vidlake.platform.lake.ids import TaskIdentity

__all__ = ["ExpandTasks", "PendingTask", "runs_on"]


@dataclass(frozen=True)
class PendingTask:
    """A (task, prompt template, query) as the job resolved it, once: its template itself, its identity
    (what enters ``task_key``) and its limits."""

    identity: TaskIdentity
    template: PromptTemplate
    windows: str  # "slow" | "fast" | "set": which windows the task runs on (an image set is one window)
    max_new_tokens: int | None = None  # None: the template's

    @property
    def task_key(self) -> str:
        return self.identity.key

    @property
    def task(self) -> str:
        return self.identity.task

    @property
    def query(self) -> str | None:
        return self.identity.query

    @property
    def token_limit(self) -> int:
        return int(self.max_new_tokens or self.template.max_new_tokens)


class ExpandTasks(Step):
    """Reads ``pending_task_keys`` (the tasks not yet done for this video), ``retry_task_keys`` (those
    of them an earlier run left with failed windows), ``kind``, ``window_count``; writes one row per
    matching task with ``task_key``, ``task``, ``query``, ``windows_total`` (how many windows the
    writer must see before it commits this video's rows for the task) and ``retry``; ``thumbs`` stays
    only on rows of tasks that point (operators/appearance.py). Rows in error fan out like the others, so
    each task records the failure. Runs inside
    the decode task (``placement="previous"``): it is cheap, and a step of its own would wait for a
    CPU that the decoders and the model hold.
    """

    stage = "expand"
    fanout = "flat"
    outputs = ("task_key", "task", "query", "windows_total", "retry")
    drops = ("pending_task_keys", "retry_task_keys")
    sees_errors = True
    default_resources = Resources(num_cpus=0.1, placement="previous")

    def __init__(self, tasks: tuple[PendingTask, ...], resources: Resources | None = None):
        super().__init__(resources)
        self.tasks = tuple(tasks)

    def process(self, row: dict[str, Any]) -> list[dict[str, Any]]:
        pending = set(row.get("pending_task_keys") or ())
        retried = set(row.get("retry_task_keys") or ())
        out = []
        for t in self.tasks:
            if t.task_key not in pending or not runs_on(t, row):
                continue
            total = row.get("window_count") if t.windows == "slow" else 1  # fast or set: one window
            kept = {} if t.task in GROUNDED_TASKS else {"thumbs": None}  # only answers that point use them
            out.append({**row, **kept, "task_key": t.task_key, "task": t.task, "query": t.query,
                        "windows_total": total or 1, "retry": t.task_key in retried})
        return out


def runs_on(task: PendingTask, row: dict[str, Any]) -> bool:
    """Slow tasks run on every dense window; a fast task on the fast window, or on the only window of a
    video short enough to be one window (it has no fast window); set tasks on image sets' windows. A
    video or set that failed before it had windows (kind is null) reaches every task it has pending, so
    each records the failure."""
    kind = row.get("kind")
    if kind is None:
        return True
    if (task.windows == "set") != (kind == "set"):
        return False
    if task.windows in ("slow", "set"):
        return task.windows == "set" or kind == "slow"
    return kind == "fast" or (kind == "slow" and row.get("window_count") == 1)
