"""The two executors of a step list (see ``vidlake.operators.step`` for the step contract).

    LocalExecutor   every step in this process, streaming row by row (ask, frames, tests, benchmarks)
    RayExecutor     the same list on a Ray cluster through Ray Data, with each step's declared resources

Resources the LocalExecutor ignores (everything runs in this one process): CPUs, GPUs, pools, and the
``niceness`` by which the RayExecutor lowers the priority of the workers that run a step.

Both run the leading ``placement="driver"`` steps in this process first (their output is the plan,
handed to ``on_planned``), and the RayExecutor the trailing driver steps on the rows as they come back.
Fusing and placement are the executor's business: a ``placement="previous"`` step runs inside the
previous step's tasks (Ray Data fuses two maps with the same resources), an ``actor`` step in a pool of
long-lived actors that call its ``setup`` when they start.
"""

from __future__ import annotations

import os
import sys
import time
from itertools import islice
from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator

from vidlake.errors import ConfigError, VidlakeError
from vidlake.platform.config import RaySettings
from vidlake.platform.runtime.cluster import ensure_ray
from vidlake.platform.runtime.noise import quiet_known_noise

if TYPE_CHECKING:
    from vidlake.operators.step import Resources, Step

__all__ = [
    "Executor", "LocalExecutor", "NicedStep", "RayExecutor", "lower_priority", "ray_args", "split_steps",
]

Planned = Callable[[list[dict[str, Any]]], None]


def split_steps(steps: list["Step"]) -> tuple[list["Step"], list["Step"], list["Step"]]:
    """(leading driver steps, the cluster part, trailing driver steps); a driver step in between is an error."""
    kinds = [s.resources.placement == "driver" for s in steps]
    first = next((i for i, driver in enumerate(kinds) if not driver), len(steps))
    if first == len(steps):
        return list(steps), [], []
    last = len(steps) - next(i for i, driver in enumerate(reversed(kinds)) if not driver)
    if any(kinds[first:last]):
        names = [s.stage for s in steps[first:last] if s.resources.placement == "driver"]
        raise ConfigError(f"driver steps {names} sit between cluster steps: move them to either end of the list")
    return steps[:first], steps[first:last], steps[last:]


def _local(step: "Step", rows: Iterable[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    if step.fanout == "batch":
        it = iter(rows)
        while chunk := list(islice(it, max(1, step.resources.batch_size))):
            yield from step.run_batch(chunk)
    elif step.fanout == "flat":
        for row in rows:
            yield from step.run_row(row)
    else:
        for row in rows:
            yield step.run_row(row)


def _chain(steps: list["Step"], rows: Iterable[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for step in steps:
        rows = _local(step, rows)
    return iter(rows)


class Executor:
    """Runs a step list over input rows and yields the output rows."""

    def run(self, steps: list["Step"], rows: Iterable[dict[str, Any]],
            on_planned: Planned | None = None) -> Iterator[dict[str, Any]]:
        raise NotImplementedError


class LocalExecutor(Executor):
    """Every step in this process, lazily: a row goes through the whole list before the next is read
    (batch steps gather ``batch_size`` rows first), so frames are dropped as soon as they are used."""

    def run(self, steps, rows, on_planned=None):
        head, middle, tail = split_steps(list(steps))
        planned = list(_chain(head, rows))
        if on_planned is not None:
            on_planned(planned)
        return _chain([*middle, *tail], planned)


class RayExecutor(Executor):
    """The cluster part as one streaming Ray Data pipeline: one input row per block (a long video's
    windows decode in parallel and reach the model as they are done), up to ``max_blocks`` blocks.
    After ``run`` is drained, ``dataset`` is the executed Ray Dataset (``dataset.stats()``)."""

    def __init__(self, settings: RaySettings = RaySettings(), max_blocks: int = 20_000):
        self.settings, self.max_blocks = settings, max_blocks
        self.dataset: Any = None

    def run(self, steps, rows, on_planned=None):
        head, middle, tail = split_steps(list(steps))
        planned = list(_chain(head, rows))
        if on_planned is not None:
            on_planned(planned)
        if not middle or not planned:
            return _chain([*middle, *tail], planned)
        return self._stream(middle, tail, planned)

    def _stream(self, middle, tail, planned) -> Iterator[dict[str, Any]]:
        import ray

        ensure_ray(self.settings)
        ds = ray.data.from_items(planned, override_num_blocks=max(1, min(len(planned), self.max_blocks)))
        previous: dict[str, Any] = {}
        for step in middle:
            args = previous if step.resources.placement == "previous" else ray_args(step.resources)
            if step.resources.actor:
                actor = type(type(step).__name__, (_StepActor,), {})  # named after the step in Ray's stats
                ds = ds.map_batches(actor, fn_constructor_args=(step,), batch_size=step.resources.batch_size,
                                    batch_format="default", concurrency=step.resources.concurrency, **args)
            else:
                fn = step
                if step.resources.niceness:  # the wrapper is named after the step in Ray's stats
                    fn = type(type(step).__name__, (NicedStep,), {})(step, step.resources.niceness)
                if step.fanout == "batch":
                    ds = ds.map_batches(fn, batch_size=step.resources.batch_size, batch_format="default", **args)
                elif step.fanout == "flat":
                    ds = ds.flat_map(fn, **args)
                else:
                    ds = ds.map(fn, **args)
            previous = args
        self.dataset = ds
        watch = StallWatch(middle, self.settings.stall_warning_s)
        with quiet_known_noise(), watch:  # Ray's spurious actor-pool error line (see noise.py)
            try:
                for row in ds.iter_rows():
                    watch.beat()
                    yield from _chain(tail, [dict(row)])
            except Exception as exc:
                cause = user_error(exc)
                if cause is None:
                    raise
                raise type(cause)(str(cause)) from None


class StallWatch:
    """While a pipeline runs, a thread that notices when no row has come back for ``after_s`` seconds and
    then says, on stderr, which resources the cluster lacks for the steps (a job on a Ray whose CPUs a search
    service holds otherwise waits without a word); it says it again at most once a minute."""

    def __init__(self, steps: list["Step"], after_s: float):
        import threading

        self.steps, self.after_s = steps, after_s
        self.last = self.said = time.monotonic()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="vidlake-stall-watch", daemon=True)

    def __enter__(self) -> "StallWatch":
        self.last = time.monotonic()
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    def beat(self) -> None:
        self.last = time.monotonic()

    def _run(self) -> None:
        while not self._stop.wait(min(5.0, self.after_s / 2)):
            now = time.monotonic()
            if now - self.last >= self.after_s and now - max(self.said, self.last) >= min(60.0, self.after_s):
                line = self.shortage(now - self.last)
                if line:
                    print(line, file=sys.stderr, flush=True)
                    self.said = now

    def shortage(self, idle_s: float) -> str | None:
        """What the steps ask that the cluster has not free now, as one line; None when nothing is short."""
        import ray

        try:
            free, total = ray.available_resources(), ray.cluster_resources()
        except Exception:  # noqa: BLE001 - a monitoring thread must never take the job down
            return None
        short = []
        for step in self.steps:
            res = step.resources
            if res.placement != "cluster":
                continue
            for kind, want in (("CPU", res.num_cpus), ("GPU", res.num_gpus)):
                # a started actor holds its share already: it is short only where the cluster has too little
                have = total.get(kind, 0.0) if res.actor else free.get(kind, 0.0)
                if want and have < want:
                    short.append(f"{type(step).__name__} needs {want:g} {kind} ({free.get(kind, 0.0):g} of "
                                 f"{total.get(kind, 0.0):g} free)")
        if not short:
            return None
        return (f"no result for {idle_s:.0f} s: {'; '.join(short)}. Other work on this Ray (a search service, "
                "another job) may hold them, or a worker group is scaled to zero: the job waits until they are "
                "free; stop it with Ctrl-C")


class NicedStep:
    """A step run by a Ray task whose worker process first lowers its CPU priority by ``niceness``
    (once per process: a worker runs many tasks, and its children inherit the priority)."""

    def __init__(self, step: "Step", niceness: int):
        self.step, self.niceness = step, niceness

    def __call__(self, item: Any) -> Any:
        lower_priority(self.niceness)
        return self.step(item)


_lowered = False  # this process is niced already


def lower_priority(niceness: int) -> None:
    """Lower this process's CPU priority by ``niceness``, once per process (a no-op where not permitted)."""
    global _lowered
    if niceness > 0 and not _lowered:
        _lowered = True
        try:
            os.nice(niceness)
        except OSError:  # not permitted here: run at the worker's priority
            pass


class _StepActor:
    """An actor of a step's pool: sets the step up when the actor starts (so a model load overlaps the
    first decodes instead of delaying the first batch), then runs its batches."""

    def __init__(self, step: "Step"):
        self.step = step
        if not step.resources.num_gpus:  # Ray gave it no GPU: it must not find (and take) one by itself
            os.environ["CUDA_VISIBLE_DEVICES"] = ""
        lower_priority(step.resources.niceness)
        self.failed: BaseException | None = None
        try:
            step.ensure_setup()
        except Exception as exc:  # noqa: BLE001 - raised with the first batch, where the job sees its cause
            # (an actor whose constructor raises reaches the driver as a bare "ActorDiedError")
            self.failed = exc

    def __call__(self, batch: dict[str, Any]) -> dict[str, Any]:
        if self.failed is not None:
            raise self.failed
        return self.step(batch)


def user_error(exc: BaseException) -> VidlakeError | None:
    """The vidlake error (a model that cannot load, a bad setting) behind an exception Ray raised on the
    driver (a task error wrapped in Ray Data's own), or None."""
    seen: set[int] = set()
    todo: list[BaseException | None] = [exc]
    while todo:
        e = todo.pop()
        if e is None or id(e) in seen:
            continue
        seen.add(id(e))
        cause = getattr(e, "cause", None)  # RayTaskError: the exception the task raised
        if isinstance(cause, VidlakeError):
            return cause
        if isinstance(e, VidlakeError) and type(e).__module__.startswith("vidlake"):
            return e
        todo.extend([cause if isinstance(cause, BaseException) else None, e.__cause__, e.__context__])
    return None


def ray_args(resources: "Resources") -> dict[str, Any]:
    """A step's resources as Ray task/actor arguments."""
    out: dict[str, Any] = {"num_cpus": resources.num_cpus, "num_gpus": resources.num_gpus}
    if resources.memory:
        out["memory"] = resources.memory
    return out
