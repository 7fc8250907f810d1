"""The step contract: what every pipeline step declares and what is the same for all of them.

A step is a cheap, picklable object (its constructor runs on the driver) that declares

* ``stage``: its short name, stamped on the rows it fails (``error_stage``, the ``errors`` table's stage);
* ``fanout``: ``"map"`` (row -> row), ``"flat"`` (row -> rows) or ``"batch"`` (rows -> as many rows);
* ``resources``: a :class:`Resources` value (CPUs, GPUs, memory, where it runs, pool size, batch size);
* ``outputs``: the columns it writes, set to null on rows it does not process (one schema per step);

and implements ``process(row)`` (or ``process_batch(rows)``) and, when it holds something heavy (a
model, a processor), ``setup()``, called once per worker before the first row.

The contract (``Step.__call__``) does the rest, identically for every step: Ray's NaN/None and numpy
scalars at block boundaries become None and Python scalars; rows whose ``status`` is not ``"ok"``
pass through untouched (only the step's missing output columns are added); a ``RowError`` (or any
other exception, except a fatal ``VidlakeError``) becomes ``status="error"``, ``error_kind``,
``error`` and ``error_stage`` on that row; counters (rows in and out, failures, seconds) are kept in
``stats``. Steps never import Ray: an executor (``vidlake.platform.runtime.executors``) runs a list
of them, in this process or on a Ray cluster.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, replace
from typing import Any, ClassVar, Iterable, Literal

import numpy as np

from vidlake.errors import RowError, VidlakeError

__all__ = [
    "ERROR_COLUMNS", "Resources", "Step", "StepStats", "columns_to_rows", "normalize", "rows_to_columns", "stats_of",
]

ERROR_COLUMNS = ("status", "error_kind", "error", "error_stage")


@dataclass(frozen=True)
class Resources:
    """What a step asks of the machine that runs it (plain data; the executor turns it into Ray arguments).

    ``placement``: ``"cluster"`` (Ray tasks or actors), ``"driver"`` (cheap work the executor keeps in
    the driver process, before or after the cluster part), or ``"previous"`` (runs inside the previous
    step's tasks, with its resources: the two are fused). ``actor``: the step holds something heavy
    that ``setup`` loads once, so it runs in a pool of ``concurrency`` long-lived workers (an int, or
    a (min, max) range an autoscaling cluster can grow into). ``batch_size``: rows per call of a
    ``"batch"`` step. ``niceness``: how much lower than other work the CPU priority of the cluster
    workers that run this step is (a Linux nice increment): where decode tasks and the model share a
    node's cores, the model, the stage that sets the pace, is served first.
    """

    num_cpus: float = 1.0
    num_gpus: float = 0.0
    memory: float | None = None
    placement: Literal["cluster", "driver", "previous"] = "cluster"
    actor: bool = False
    concurrency: int | tuple[int, int] = 1
    batch_size: int = 1
    niceness: int = 0

    def with_(self, **changes: Any) -> "Resources":
        return replace(self, **changes)


@dataclass
class StepStats:
    """Counters of one step in one process."""

    rows_in: int = 0
    rows_out: int = 0
    failed: int = 0  # rows this step turned into errors
    passed: int = 0  # rows already in error that passed through
    seconds: float = 0.0

    def add(self, other: "StepStats") -> None:
        for name in ("rows_in", "rows_out", "failed", "passed", "seconds"):
            setattr(self, name, getattr(self, name) + getattr(other, name))


class Step:
    """Base of every pipeline step; see the module docstring for the contract."""

    stage: ClassVar[str] = "step"
    fanout: ClassVar[Literal["map", "flat", "batch"]] = "map"
    outputs: ClassVar[tuple[str, ...]] = ()
    default_resources: ClassVar[Resources] = Resources()
    drops: ClassVar[tuple[str, ...]] = ()  # columns removed from every row (used up: frames, model inputs)
    sees_errors: ClassVar[bool] = False  # process() also gets rows in error (a fan-out that must copy them)
    _loaded: ClassVar[tuple[str, ...]] = ()  # attributes setup() fills: never pickled, loaded again per worker

    def __init__(self, resources: Resources | None = None):
        self.resources = resources or self.default_resources
        self.stats = StepStats()
        self._ready = False

    # -- what a step implements ------------------------------------------------------------------
    def setup(self) -> None:
        """Load what the step needs once per worker (a model, a processor). Default: nothing."""

    def process(self, row: dict[str, Any]) -> dict[str, Any] | list[dict[str, Any]]:
        raise NotImplementedError

    def process_batch(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """A batch step's work on its ok rows; returns one row per input row, in order."""
        raise NotImplementedError

    # -- the contract ----------------------------------------------------------------------------
    def __getstate__(self) -> dict:
        """Ship configuration, never what ``setup`` loaded (subclasses list those in ``_loaded``)."""
        state = dict(self.__dict__)
        for name in self._loaded:
            state[name] = None
        state["_ready"] = False
        state["stats"] = StepStats()
        return state

    def ensure_setup(self) -> None:
        if not self._ready:
            self.setup()
            self._ready = True

    def __call__(self, item: Any) -> Any:
        """Row (map/flat) or columnar batch (batch): what Ray Data and the local executor call."""
        if self.fanout == "batch":
            rows = columns_to_rows(item) if isinstance(item, dict) else list(item)
            out = self.run_batch(rows)
            return rows_to_columns(out) if isinstance(item, dict) else out
        return self.run_row(item)

    def run_row(self, row: dict[str, Any]) -> Any:
        row = normalize(row)
        self.stats.rows_in += 1
        began = time.perf_counter()
        if row["status"] != "ok" and not self.sees_errors:
            self.stats.passed += 1
            out: Any = self._pass(row)
        else:
            try:
                self.ensure_setup()
                out = self.process(row)
            except VidlakeError:
                raise
            except Exception as exc:  # noqa: BLE001 - one bad row must not stop the run
                out = self.fail(row, exc)
        self.stats.seconds += time.perf_counter() - began
        if self.fanout == "flat":
            out = [self._complete(r) for r in (out if isinstance(out, list) else [out])]
            self.stats.rows_out += len(out)
            return out
        self.stats.rows_out += 1
        return self._complete(out)

    def run_batch(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        rows = [normalize(r) for r in rows]
        self.stats.rows_in += len(rows)
        began = time.perf_counter()
        todo = [i for i, r in enumerate(rows) if r["status"] == "ok"]
        out = [self._pass(r) for r in rows]
        self.stats.passed += len(rows) - len(todo)
        if todo:
            try:
                self.ensure_setup()
                done = self.process_batch([rows[i] for i in todo])
            except VidlakeError:
                raise
            except Exception as exc:  # noqa: BLE001 - the batch's rows fail, the run goes on
                done = [self.fail(rows[i], exc) for i in todo]
            for i, row in zip(todo, done):
                out[i] = row
        self.stats.seconds += time.perf_counter() - began
        self.stats.rows_out += len(out)
        return [self._complete(r) for r in out]

    def fail(self, row: dict[str, Any], exc: BaseException) -> dict[str, Any]:
        """``row`` as this step's error: ``RowError`` keeps its kind, anything else is ``<stage>_failed``."""
        self.stats.failed += 1
        if isinstance(exc, RowError):
            kind, message = exc.kind, exc.message
        else:
            kind, message = f"{self.stage}_failed", f"{type(exc).__name__}: {exc}"
        return {**self._pass(row), "status": "error", "error_kind": kind, "error": message[:2000],
                "error_stage": self.stage}

    def _pass(self, row: dict[str, Any]) -> dict[str, Any]:
        return {**{c: None for c in self.outputs}, **row}

    def _complete(self, row: dict[str, Any]) -> dict[str, Any]:
        for c in self.outputs:
            row.setdefault(c, None)
        for c in self.drops:
            row.pop(c, None)
        return row


def normalize(row: dict[str, Any]) -> dict[str, Any]:
    """A row as steps expect it: null-like values (NaN floats from Ray's all-null columns) -> None,
    numpy scalars -> Python scalars, object arrays (Ray's form of a list column, such as ``uris``) -> lists
    (Ray cannot turn a column of them back into Arrow, and says so), and the four status columns present.
    Numeric arrays (frames) stay arrays."""
    out: dict[str, Any] = {}
    for key, value in row.items():
        if isinstance(value, np.generic):
            value = value.item()
        elif isinstance(value, np.ndarray) and value.dtype == object:
            value = value.tolist()
        if isinstance(value, float) and math.isnan(value):
            value = None
        out[key] = value
    if out.get("status") is None:
        out["status"] = "ok"
    for c in ERROR_COLUMNS[1:]:
        out.setdefault(c, None)
    return out


def columns_to_rows(batch: dict[str, Iterable[Any]]) -> list[dict[str, Any]]:
    keys = list(batch)
    return [dict(zip(keys, values)) for values in zip(*(batch[k] for k in keys))]


def rows_to_columns(rows: list[dict[str, Any]]) -> dict[str, list[Any]]:
    columns: list[str] = []
    seen: set[str] = set()
    for r in rows:
        for k in r:
            if k not in seen:
                seen.add(k)
                columns.append(k)
    return {c: [r.get(c) for r in rows] for c in columns}


def stats_of(steps: Iterable[Step]) -> dict[str, StepStats]:
    """Counters by stage (steps of one stage added up)."""
    out: dict[str, StepStats] = {}
    for step in steps:
        out.setdefault(step.stage, StepStats()).add(step.stats)
    return out

