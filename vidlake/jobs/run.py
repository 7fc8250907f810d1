"""The main job (``vidlake run``, ``vidlake caption``): sources -> videos -> windows -> Molmo 2 -> the lake.

    ingest (list, probe new files)                            committed first (vidlake.jobs.ingest)
    SkipDone: (video, task_key) pairs already in `outputs` drop out                  driver
    run_steps(): PlanWindows -> SampleFrames -> ExpandTasks -> BuildPrompt -> RunModel -> ParseOutput
    WriteTables: per-video merge and atomic commits                                   driver

``run_steps`` is the job's one step list; the RayExecutor runs it as one streaming Ray Data pipeline
(windows are the unit of work, frames are dropped once the prompt is built, only parsed rows wait on
the driver until a video is complete), and ``vidlake ask`` runs the very same list in-process.
"""

from __future__ import annotations

import os
import socket
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Callable

from vidlake.errors import ConfigError, JobFailed
from vidlake.jobs.image_sets import set_items
from vidlake.jobs.ingest import run_ingest
from vidlake.jobs.spec import JobSpec, resolve_tasks
from vidlake.models.molmo2 import ModelRef
from vidlake.operators.appearance import GROUNDED_TASKS
from vidlake.operators.infer import InferConfig, RunModel, RunVLLM
from vidlake.operators.oracle import AnswerFromTruth
from vidlake.operators.parse import ParseOutput
from vidlake.operators.plan import PlanWindows
from vidlake.operators.prompt import BuildPrompt, BuildRequest, PromptConfig
from vidlake.operators.sample import SampleConfig, SampleFrames
from vidlake.operators.step import Step
from vidlake.operators.tasks import ExpandTasks, PendingTask, runs_on
from vidlake.operators.write import WriteTables
from vidlake.platform.config import LakeSettings, Settings
from vidlake.platform.lake import Lake
from vidlake.platform.lake.lease import Lease
from vidlake.platform.lake.runs import RunRecord
from vidlake.platform.notify import check_secrets, notify
from vidlake.platform.runtime import ensure_ray, print_summary, progress_bar
from vidlake.platform.runtime.cluster import alive_nodes
from vidlake.platform.runtime.executors import Executor, RayExecutor
from vidlake.platform.storage import check_lake_reachable

__all__ = ["JobResult", "check_prompt_lengths", "claim_work", "failed_attempts", "fit_sampling", "model_gpus", "model_steps", "pending_work", "run_job", "run_steps", "video_item", "webhook_payload"]


@dataclass
class JobResult:
    run_id: str
    videos: int = 0  # videos under the sources
    sets: int = 0  # image sets under the sources
    videos_todo: int = 0  # videos and image sets with at least one task to run
    windows_planned: int = 0  # (window, task) pairs
    windows_ok: int = 0
    windows_failed: int = 0
    frames: int = 0
    generated_tokens: int = 0
    model_s: float = 0.0  # seconds of generate() work, summed over replicas
    gpus_per_replica: float = 0.0
    video_s: float = 0.0  # seconds of video processed (image sets not counted)
    seconds: float = 0.0
    rows: dict[str, int] = field(default_factory=dict)
    task_keys: list[str] = field(default_factory=list)
    claimed_elsewhere: int = 0  # (video, task) pairs left to another run that is doing them now
    failed_by_stage: dict[str, int] = field(default_factory=dict)  # failed windows x tasks by the step that failed
    pipeline_s: float | None = None  # seconds from the start of the run to the start of the pipeline (set-up,
    # ingest, claims)
    first_window_s: float | None = None  # seconds from the start of the run to the first window back
    last_window_s: float | None = None  # ... and to the last
    pipeline_stats: str = ""  # Ray Data's per-operator statistics of the run (RayExecutor)
    analyses: dict = field(default_factory=dict)  # the spec's analyses: name -> what their run did
    report: str | None = None  # where the spec's report was written


def run_steps(spec: JobSpec, settings: Settings, ref: ModelRef, tasks: tuple[PendingTask, ...],
              gpus: float = 0.0) -> list[Step]:
    """The main job's step list, with the spec's resources (``gpus`` per model replica)."""
    res = spec.resources
    return [
        PlanWindows(spec.sampling, fast=any(t.windows == "fast" for t in tasks)),
        SampleFrames(SampleConfig(sampling=spec.sampling, storage=settings.storage,
                                  thumbs=any(t.task in GROUNDED_TASKS for t in tasks)),
                     resources=SampleFrames.default_resources.with_(num_cpus=res.decode_cpus,
                                                                    niceness=res.decode_niceness)),
        ExpandTasks(tasks),
        *model_steps(spec, ref, tasks, gpus),
        # inside the oracle's own tasks (a plain map); after Molmo 2's actor pool, on the driver (a cluster task
        # of its own would wait behind the decoders for a CPU on a small machine)
        ParseOutput(resources=ParseOutput.default_resources.with_(placement="previous") if ref.engine == "oracle"
                    else None),
    ]


def model_steps(spec: JobSpec, ref: ModelRef, tasks: tuple[PendingTask, ...], gpus: float = 0.0) -> list[Step]:
    """The engine's steps between ExpandTasks and ParseOutput: BuildPrompt + RunModel for Molmo 2 through
    transformers, BuildRequest + RunVLLM through vLLM, AnswerFromTruth for the oracle (the same columns out,
    so the rest of the job is one)."""
    prompts = PromptConfig(model=ref, tasks=tasks, settings=spec.model)
    if ref.engine == "oracle":
        return [AnswerFromTruth(prompts)]
    res = spec.resources
    batch = spec.model.batch_size or res.batch_size
    build, run = (BuildRequest, RunVLLM) if ref.engine == "vllm" else (BuildPrompt, RunModel)
    return [
        build(prompts),
        run(InferConfig(model=ref, settings=spec.model, batch_size=batch, max_new_tokens=spec.model.max_new_tokens),
            resources=run.default_resources.with_(num_cpus=res.model_cpus, num_gpus=gpus, batch_size=batch,
                                                  concurrency=res.replicas)),
    ]


def fit_sampling(spec: JobSpec, ref: ModelRef, show: bool = True) -> JobSpec:
    """``spec`` with windows of at most the frames the checkpoint was trained on (``molmo2.frame_limit``: the
    toy Molmo 2's 8): ``sampling.max_frames`` (and ``fast_max_frames`` with the fast pass) capped to it, said
    on one line. The capped sampling is the run's (its task keys are made with it). A spec within the limit,
    or a model that declares none, is returned as it is."""
    from vidlake.models.molmo2 import frame_limit

    limit = frame_limit(ref, spec.model)
    s = spec.sampling
    used = ("max_frames", "fast_max_frames") if s.fast_pass else ("max_frames",)
    capped = {k: limit for k in used if limit is not None and getattr(s, k) > limit}
    if not capped:
        return spec
    if show:
        asked = ", ".join(f"{k} {getattr(s, k)}" for k in capped)
        print(f"{ref.model_id} was trained on windows of at most {limit} frames: sampling {asked} -> {limit}",
              flush=True)
    return spec.model_copy(update={"sampling": s.model_copy(update=capped)})


def check_prompt_lengths(spec: JobSpec, ref: ModelRef, tasks: tuple[PendingTask, ...], set_images: int = 5) -> None:
    """Refuse, before any work, a task whose longest window would not fit the model's context: a full
    window's visual tokens (measured with the checkpoint's own processor on blank frames; for a task on
    image sets, ``set_images`` blank square images at ``sampling.image_size``) + the task's prompt + its
    token limit. Raises ``ConfigError`` naming the task and the numbers."""
    import numpy as np

    from vidlake.models.molmo2 import context_length, load_processor
    from vidlake.models.molmo2_inputs import prepare_images, prepare_window

    if not tasks or ref.engine == "oracle":  # the oracle has no context to overflow
        return
    limit = context_length(ref, spec.model)
    processor = load_processor(ref, spec.model)
    s = spec.sampling
    times = [i / s.fps for i in range(s.max_frames)]
    visual: dict[bool, int] = {}  # on image sets? -> visual tokens of a full window
    if any(t.windows != "set" for t in tasks):
        side = s.size or 378
        frames = np.zeros((s.max_frames, side, side, 3), np.uint8)
        visual[False] = prepare_window(processor, frames, times, 0.0, "")["prompt_tokens"]
    if any(t.windows == "set" for t in tasks):
        side = s.image_size or 1024
        visual[True] = prepare_images(processor, [np.zeros((side, side, 3), np.uint8)] * set_images, "")["prompt_tokens"]
    for t in tasks:
        seen = visual[t.windows == "set"]
        text = t.template.render(t.query, 0.0, times[-1])
        need = seen + len(processor.tokenizer(text)["input_ids"]) + t.token_limit
        if need > limit:
            shown = (t.query[:60] + "...") if t.query and len(t.query) > 60 else t.query
            what = (f"{set_images} images of {s.image_size or 1024} px" if t.windows == "set"
                    else f"{s.max_frames} frames")
            fix = "sampling.image_size or ingest.set_max_images" if t.windows == "set" else "sampling.max_frames"
            raise ConfigError(
                f"task {t.task!r} ({shown!r}) needs {need} tokens per window ({seen} for {what}, "
                f"{need - seen - t.token_limit} of prompt, {t.token_limit} to generate), more than "
                f"{ref.model_id}'s context of {limit}: shorten the question, lower max_new_tokens or {fix}")


def executor_gpus(executor: Executor, settings: Settings) -> tuple[float, str]:
    """GPUs where ``executor`` runs the model, and what that place is called (for messages)."""
    if isinstance(executor, RayExecutor):
        import ray

        ensure_ray(settings.ray)
        return float(ray.cluster_resources().get("GPU", 0)), "this Ray cluster"
    import torch

    return float(torch.cuda.device_count()), "this machine"


def model_gpus(spec: JobSpec) -> float:
    """GPUs per model replica (see ``ResourcesSpec.gpus_per_replica``), checked against the cluster before
    any work: GPUs asked for where the cluster has too few fail, unless the pool is a range (an autoscaling
    cluster adds GPU nodes while the job waits); "auto" without GPUs is CPU on this machine alone, an error
    on a cluster."""
    import ray

    have = ray.cluster_resources().get("GPU", 0)
    want = spec.resources.gpus_per_replica
    growing = isinstance(spec.resources.replicas, tuple)
    if want == "auto":
        if have >= 1:
            return 1.0
        if alive_nodes() > 1 and not growing:
            raise ConfigError("resources.gpus_per_replica is auto, but the Ray cluster has no GPUs (a GPU worker group "
                              "scaled to zero?): set it to 0 to run the model on CPU, or give the cluster GPU nodes")
        print("model on CPU: no GPU in this Ray (resources.gpus_per_replica: 0 says so and silences this line)",
              flush=True)
        return 0.0
    want = float(want)
    if want > have and not growing:
        raise ConfigError(f"resources.gpus_per_replica is {want:g}, but the Ray cluster has {have:g} GPUs: add GPU nodes, "
                          "use a replica range [min, max] on an autoscaling cluster, or set 0 for CPU inference")
    return want


def run_job(spec: JobSpec, settings: Settings, show: bool = True, executor: Executor | None = None,
            schedule: str | None = None) -> JobResult:
    """Run ``spec``; safe to re-run or to kill at any point (see docs/jobs.md, Exactly once). Then its
    analyses (``analyses:``), its report (``report:``), and its webhooks (``notify:``, on completion and
    on failure, whichever step failed).

    ``executor``: the RayExecutor (default) or a LocalExecutor (everything in this process).
    ``schedule``: the schedule that started the run, for the webhooks' payload."""
    settings = settings.model_copy(update={"lake": LakeSettings(uri=spec.lake), "model": spec.model,
                                           "sampling": spec.sampling})
    lake = Lake(settings.lake.uri, settings.storage)
    check_lake_reachable(lake.uri, settings.storage)
    check_secrets(spec.notify)  # a webhook whose secret is missing fails before any work
    analyses = spec.analysis_file()
    if analyses is not None:  # a bad deployments file fails before any work
        from vidlake.jobs.analyze import check_analyses

        check_analyses(analyses, settings)
    record = RunRecord(lake, spec.name, sources=spec.sources, spec_json=spec.model_dump_json())
    result = JobResult(run_id=record.run_id)
    try:
        _run_tasks(spec, settings, lake, record, result, show, executor)
        if analyses is not None:  # the job's own analyses, on what it just wrote (a run of its own)
            from vidlake.jobs.analyze import run_analyze

            result.analyses = run_analyze(analyses, settings, show=show).analyses
        if spec.report is not None:
            from vidlake.jobs.report import run_report

            result.report = run_report(lake.uri, spec.report.out, settings, spec=analyses, show=show).out
    except BaseException as exc:
        if spec.notify:
            notify(spec.notify, "failed", webhook_payload(spec, lake, result, "failed", schedule,
                                                          f"{type(exc).__name__}: {exc}"), lake)
        raise
    if spec.notify:
        notify(spec.notify, "completed", webhook_payload(spec, lake, result, "completed", schedule), lake)
    return result


def webhook_payload(spec: JobSpec, lake: Lake, result: JobResult, state: str, schedule: str | None,
             message: str | None = None) -> dict:
    """The webhooks' JSON for every end of a run (docs/schedules.md)."""
    return {"run_id": result.run_id, "job": spec.name, "schedule": schedule, "state": state, "lake": lake.uri,
            "message": message, "seconds": round(result.seconds, 3), "report": result.report,
            "counts": {"videos": result.videos, "sets": result.sets, "videos_todo": result.videos_todo,
                       "windows_ok": result.windows_ok, "windows_failed": result.windows_failed,
                       "rows": result.rows},
            "analyses": result.analyses}


def _run_tasks(spec: JobSpec, settings: Settings, lake: Lake, record: RunRecord, result: JobResult, show: bool,
               executor: Executor | None) -> None:
    """The job proper: ingest, the tasks on every window not done yet, the commits, the run's row."""
    from vidlake.models.molmo2 import resolve_model
    from vidlake.models.vllm_engine import with_engine

    started = time.monotonic()
    with record:  # from here on, whatever happens is recorded in the run's row (a bad model too)
        ref = resolve_model(spec.model, settings.storage)  # fails fast (ModelLoadError), before the ingest and any cluster work
        executor = executor or RayExecutor(settings.ray)
        if spec.model.engine != "hf":  # vLLM without a GPU or the package fails here, before any work
            ref = with_engine(ref, spec.model, *executor_gpus(executor, settings))
        spec = fit_sampling(spec, ref, show)
        tasks = resolve_tasks(spec.task_runs(), ref, spec.sampling)
        check_prompt_lengths(spec, ref, tasks)
        gpus = 0.0
        if isinstance(executor, RayExecutor):  # GPUs the cluster cannot give fail here, before the ingest
            ensure_ray(settings.ray)
            gpus = model_gpus(spec) if ref.engine != "oracle" else 0.0
            if ref.engine == "vllm" and gpus < 1:
                raise ConfigError(f"model.engine vllm needs a whole GPU per model replica, but resources."
                                  f"gpus_per_replica is {gpus:g}")
        ingest = run_ingest(settings, spec.sources, show=show, executor=executor)
        videos = [video_item(v, []) for v in lake.read("videos").to_pylist() if v["video_id"] in ingest.source_video_ids]
        sets = set_items(lake, ingest.source_set_ids)
        if sets:  # the tasks as they run on image sets: task keys of their own (docs/images.md)
            tasks = resolve_tasks(spec.task_runs(), ref, spec.sampling, images=True)
            check_prompt_lengths(spec, ref, tuple(t for t in tasks if t.windows == "set"),
                                 set_images=max(len(s["set_uris"]) for s in sets))
        items = claim_work(lake, record.run_id, lambda: pending_work([*videos, *sets], tasks, lake, spec.retry_failed),
                           result)
        steps = run_steps(spec, settings, ref, tasks, gpus)
        result.videos, result.sets, result.videos_todo, result.gpus_per_replica = len(videos), len(sets), len(items), gpus
        result.task_keys = [t.task_key for t in tasks]
        result.video_s = sum(item["duration_s"] or 0.0 for item in items if item["media"] == "video")
        writer = WriteTables(lake, result.run_id, flush_every=spec.commit_every)
        if items:
            _stream(executor, steps, items, tasks, writer, result, started)
        writer.flush()
        if writer.incomplete:
            raise JobFailed(f"{len(writer.incomplete)} (video, task) pairs did not get all their windows back")
        failed_share = result.windows_failed / result.windows_planned if result.windows_planned else 0.0
        message = None
        if items and result.windows_ok == 0:
            message = f"no window produced output ({result.windows_failed} failed); see `errors` in {lake.uri}"
        elif failed_share > spec.failure_budget:
            message = (f"{result.windows_failed} of {result.windows_planned} windows failed "
                       f"({failed_share:.0%} > failure budget {spec.failure_budget:.0%}); see `errors` in {lake.uri}")
        result.seconds = time.monotonic() - started
        result.rows = dict(writer.stats.rows)
        record.finish("failed" if message else "completed", message, metrics=_metrics(result),
                      task_keys=result.task_keys, model_id=ref.model_id, model_revision=ref.revision,
                      files_found=ingest.found, videos_new=result.videos_todo,
                      videos_known=result.videos - result.videos_todo, failed=result.windows_failed)
    if show:
        _print(result, lake)
    if message:
        raise JobFailed(message)


def _stream(executor: Executor, steps: list[Step], items: list[dict], tasks: tuple[PendingTask, ...],
            writer: WriteTables, result: JobResult, started: float) -> None:
    """Run the step list over the pending videos, writing windows as they come back."""

    def planned(windows: list[dict]) -> None:
        for row in windows:
            pending = set(row["pending_task_keys"])
            result.windows_planned += sum(t.task_key in pending and runs_on(t, row) for t in tasks)

    pairs = sum(len(item["pending_task_keys"]) for item in items)
    result.pipeline_s = time.monotonic() - started
    rows = executor.run(steps, items, on_planned=planned)
    with progress_bar("windows", total=result.windows_planned) as bar:
        began = time.monotonic()
        for row in rows:
            result.last_window_s = time.monotonic() - started
            row = writer.add(row)  # as plain Python values
            if result.first_window_s is None:
                result.first_window_s = result.last_window_s
            if row["status"] != "ok":
                stage = row.get("error_stage") or "unknown"
                result.failed_by_stage[stage] = result.failed_by_stage.get(stage, 0) + 1
            bar.set_total(result.windows_planned)
            result.windows_ok, result.windows_failed = writer.stats.windows_ok, writer.stats.windows_failed
            result.frames += len(row.get("timestamps_s") or ())
            result.generated_tokens += row.get("generated_tokens") or 0
            if row.get("infer_s") and row.get("infer_batch"):
                result.model_s += row["infer_s"] / row["infer_batch"]
            elapsed = max(time.monotonic() - began, 1e-9)
            bar.advance(1, f"(video, task) pairs committed {writer.stats.videos_committed}/{pairs}, "
                           f"{result.frames / elapsed:.1f} frames/s, {result.generated_tokens / elapsed:.1f} tok/s, "
                           f"{result.windows_failed} failed")
    if isinstance(executor, RayExecutor) and executor.dataset is not None:
        result.pipeline_stats = executor.dataset.stats()


def _metrics(result: JobResult) -> dict:
    hours = result.video_s / 3600
    return {
        "videos_todo": result.videos_todo, "claimed_elsewhere": result.claimed_elsewhere, "windows_planned": result.windows_planned,
        "windows_ok": result.windows_ok, "windows_failed": result.windows_failed, "frames": result.frames,
        "generated_tokens": result.generated_tokens, "video_s": result.video_s, "model_s": result.model_s,
        "windows_per_s": result.windows_ok / result.seconds if result.seconds else 0.0,
        "model_s_per_video_hour": result.model_s / hours if hours else None,
        "gpu_s_per_video_hour": result.model_s * result.gpus_per_replica / hours if hours else None,
        "failed_by_stage": result.failed_by_stage, "first_window_s": result.first_window_s,
        "last_window_s": result.last_window_s, "rows": result.rows,
    }


def pending_work(media: list[dict], tasks: tuple[PendingTask, ...], lake: Lake, retries: int = 2) -> list[dict]:
    """SkipDone: one row per video or image set (``video_item`` / ``image_sets.set_items`` rows) that still
    has tasks to run, with ``pending_task_keys`` and ``retry_task_keys`` (a set's tasks are the ``set``
    ones, a video's the others).

    A (video, task_key) is done when its rows are in ``outputs``, the table WriteTables commits last,
    unless some of its windows failed: then the next ``retries`` runs try it again (the file may be
    back, the worker may not run out of memory), each replacing its rows."""
    keys = [t.task_key for t in tasks]
    done: set[tuple[str, str]] = set()
    failing: set[tuple[str, str]] = set()
    if lake.exists("outputs"):
        table = lake.read("outputs", columns=["video_id", "task_key", "parse_status"], filters=[("task_key", "in", keys)])
        for video_id, key, status in zip(*(table[c].to_pylist() for c in ("video_id", "task_key", "parse_status"))):
            done.add((video_id, key))
            if status == "error":
                failing.add((video_id, key))
    attempts = failed_attempts(lake, failing)
    items = []
    for v in sorted(media, key=lambda v: v["video_id"]):
        pair = lambda k: (v["video_id"], k)  # noqa: E731
        mine = [t.task_key for t in tasks if (t.windows == "set") == (v["media"] == "set")]
        retry = [k for k in mine if pair(k) in failing and attempts.get(pair(k), 0) <= retries]
        pending = [k for k in mine if pair(k) not in done] + retry
        if pending and v["uris"]:  # a video whose every file changed or went away has nothing to decode
            items.append({**_uniform(v), "pending_task_keys": pending, "retry_task_keys": retry})
    return items


_SET_COLUMNS = ("set_uris", "set_image_ids", "set_sizes", "set_times_s")
_VIDEO_COLUMNS = ("size", "duration_s", "fps", "frames", "width", "height", "codec", "rotation")


def _uniform(item: dict) -> dict:
    """Every input row with the same columns (null where a video has no set's, or a set no video's)."""
    return {**{c: None for c in (*_SET_COLUMNS, *_VIDEO_COLUMNS)}, **item}


def claim_work(lake: Lake, run_id: str, pending: Callable[[], list[dict]], result: JobResult) -> list[dict]:
    """Claim the pending (video, task_key) pairs for this run, leaving out those a live run (running,
    still beating, and its driver process alive where this host can tell) claimed first: two jobs at once
    on one lake never do the same model work twice. Under the lake's ``claims`` lease, with ``pending()``
    (SkipDone) read under it too, so that two runs starting together see each other's claims and a run
    that has just finished is seen done."""
    from vidlake.platform.lake.runs import run_state

    with Lease(lake.uri, "claims", lake.storage):
        # the live runs first, then what is done: a run that ends between the two reads committed its
        # outputs before it ended, so its work is seen done; read the other way round, it would be redone
        live = {r["run_id"] for r in lake.read("runs").to_pylist() if r["run_id"] != run_id and run_state(r) == "running"}
        items = pending()
        keys = sorted({k for item in items for k in item["pending_task_keys"]})
        if not keys:
            return items
        taken = set()
        if live and lake.exists("claims"):
            claims = lake.read("claims", filters=[("task_key", "in", keys)]).to_pylist()
            taken = {(c["video_id"], c["task_key"]) for c in claims if c["run_id"] in live and _alive(c["holder"])}
        kept = []
        for item in items:
            mine = [k for k in item["pending_task_keys"] if (item["video_id"], k) not in taken]
            result.claimed_elsewhere += len(item["pending_task_keys"]) - len(mine)
            if mine:
                kept.append({**item, "pending_task_keys": mine,
                             "retry_task_keys": [k for k in item.get("retry_task_keys") or () if k in mine]})
        now = datetime.now(timezone.utc)
        holder = f"{socket.gethostname()}:{os.getpid()}"
        lake.append("claims", [{"run_id": run_id, "video_id": item["video_id"], "task_key": k, "holder": holder,
                                "at": now} for item in kept for k in item["pending_task_keys"]])
    return kept


def _alive(holder: str | None) -> bool:
    """Whether a claim's driver may still be at work: a process of this host that is gone is not (a run
    killed a moment ago, before its heartbeat went stale); elsewhere the heartbeat decides."""
    host, _, pid = (holder or "").rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return True
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    return True


def failed_attempts(lake: Lake, pairs: set[tuple[str, str]]) -> dict[tuple[str, str], int]:
    """How many runs left failed windows for each (video, task_key): runs with window errors for the video
    (the ``errors`` table) whose task keys include the key (the ``runs`` table)."""
    if not pairs:
        return {}
    errors = lake.read("errors", columns=["video_id", "stage", "run_id"]).to_pylist()
    runs = {r["run_id"]: set(r["task_keys"] or ()) for r in lake.read("runs", columns=["run_id", "task_keys"]).to_pylist()}
    failed_runs: dict[str, set[str]] = {}
    for e in errors:
        if e["stage"] != "probe" and e["video_id"] is not None:
            failed_runs.setdefault(e["video_id"], set()).add(e["run_id"])
    return {(video, key): sum(key in runs.get(run, ()) for run in failed_runs.get(video, ())) for video, key in pairs}


def video_item(video: dict, pending_task_keys: list[str]) -> dict:
    """The input row of the step list for one video (a ``videos`` row, or a probe with ``uris``)."""
    return _uniform({**{k: video[k] for k in ("video_id", *_VIDEO_COLUMNS) if k in video},
                     "media": "video", "uri": video["uris"][0], "uris": list(video["uris"]), "status": "ok",
                     "pending_task_keys": pending_task_keys})


def _print(result: JobResult, lake: Lake) -> None:
    rows = [
        ("videos under the sources", result.videos),
        *((("image sets under the sources", result.sets),) if result.sets else ()),
        ("videos and sets with work to do" if result.sets else "videos with work to do", result.videos_todo),
        ("(video, task) pairs another run is doing", result.claimed_elsewhere),
        ("windows x tasks planned", result.windows_planned),
        ("windows ok", result.windows_ok),
        ("windows failed", result.windows_failed),
        *[(f"  failed in {stage}", n) for stage, n in sorted(result.failed_by_stage.items())],
        ("frames decoded", result.frames),
        ("tokens generated", result.generated_tokens),
        ("seconds", result.seconds),
        ("windows per second", result.windows_ok / result.seconds if result.seconds else 0.0),
        ("model seconds per video hour", result.model_s / (result.video_s / 3600) if result.video_s else 0.0),
        ("GPU seconds per video hour",
         result.model_s * result.gpus_per_replica / (result.video_s / 3600) if result.video_s else 0.0),
    ]
    rows += [(f"rows -> {table}", n) for table, n in sorted(result.rows.items())]
    print_summary(f"run {result.run_id} -> {lake.uri}", rows)
