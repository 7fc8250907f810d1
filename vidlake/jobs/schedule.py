"""``vidlake schedule``: a job spec run on its ``schedule:``, on one machine or as a Kubernetes CronJob.

    once        the spec's run (ingest, tasks, analyses, report, webhooks) under the schedule's lease
    start       an embedded APScheduler that calls ``once`` on the cron expression or interval, with a
                persistent job store (SQLite): a restarted scheduler knows when it last ran, runs a
                missed run once (coalesced) within ``misfire_grace_s``, and never runs two at a time
    export-k8s  the same as a CronJob whose pod creates a RayJob that calls ``once`` (infra/k8s/schedule)

Two runs of one schedule never overlap, whatever started them (two schedulers, a CronJob and a person):
``once`` holds the lease ``schedule-<name>`` in the lake (vidlake/platform/lake/lease.py), renewed
while it runs; a run that finds it held is refused at once, recorded as a ``skipped`` run and sent to
the webhooks that ask for ``skipped``. See docs/schedules.md.
"""

from __future__ import annotations

import os
import re
import shutil
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from importlib import resources
from pathlib import Path
from typing import Any, Callable
from zoneinfo import ZoneInfo

import yaml

from vidlake.errors import ConfigError
from vidlake.jobs.spec import JobSpec, ScheduleSpec, load_job_spec
from vidlake.platform.config import Settings, load_settings
from vidlake.platform.lake import Lake
from vidlake.platform.lake.lease import Lease, LeaseHeld
from vidlake.platform.lake.runs import RunRecord
from vidlake.platform.notify import check_secrets, notify

__all__ = ["ScheduledRun", "default_state", "export_k8s", "list_schedules", "run_once", "start_scheduler"]

_K8S_NAME = re.compile(r"^[a-z0-9]([a-z0-9-]{0,40}[a-z0-9])?$")


@dataclass
class ScheduledRun:
    schedule: str
    state: str  # completed | failed | skipped
    run_id: str | None
    message: str | None = None


def run_once(spec_path: str | Path, settings: Settings, executor: Any = None, show: bool = True) -> ScheduledRun:
    """One run of the spec at ``spec_path`` (read afresh, so edits apply from the next run) under its
    schedule's lease; a held lease makes it a ``skipped`` run. Errors of the run propagate after the
    lease is given back (the run's own row and webhooks have recorded them)."""
    from vidlake.jobs.run import run_job

    spec = load_job_spec(spec_path)
    schedule = spec.schedule or ScheduleSpec(every="1d")  # `once` on a spec without schedule: the defaults
    lake = Lake(spec.lake, settings.storage)
    check_secrets(spec.notify)
    lease = Lease(spec.lake, f"schedule-{spec.name}", settings.storage, ttl_s=schedule.lease_ttl_s, wait_s=0,
                  renew_every_s=schedule.lease_ttl_s / 3, note=f"run of {spec_path}")
    try:
        lease.__enter__()
    except LeaseHeld as held:
        return _skipped(spec, lake, held, show)
    try:
        result = run_job(spec, settings, show=show, executor=executor, schedule=spec.name)
    finally:
        lease.__exit__(None, None, None)
    return ScheduledRun(spec.name, "completed", result.run_id)


def _skipped(spec: JobSpec, lake: Lake, held: LeaseHeld, show: bool) -> ScheduledRun:
    since = datetime.fromtimestamp(held.since, timezone.utc).isoformat(timespec="seconds") if held.since else "?"
    message = f"schedule {spec.name!r} is still running elsewhere ({held.holder}, since {since}): run skipped"
    with RunRecord(lake, spec.name, sources=spec.sources, spec_json=spec.model_dump_json()) as record:
        record.finish("skipped", message)
    if spec.notify:
        from vidlake.jobs.run import JobResult, webhook_payload

        notify(spec.notify, "skipped", webhook_payload(spec, lake, JobResult(run_id=record.run_id), "skipped",
                                                       spec.name, message), lake)
    if show:
        print(message)
    return ScheduledRun(spec.name, "skipped", record.run_id, message)


def fire(spec_path: str, config: str | None, settings_args: dict, local: bool) -> str:
    """What the scheduler calls (by reference, so the job store can keep it): one ``run_once``."""
    from vidlake.platform.runtime.executors import LocalExecutor

    settings = load_settings(Path(config) if config else None, **settings_args)
    return run_once(spec_path, settings, executor=LocalExecutor() if local else None).state


def default_state() -> Path:
    """Where schedules are kept: ``$XDG_STATE_HOME/vidlake`` (``~/.local/state/vidlake``)."""
    return Path(os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state") / "vidlake"


def _trigger(schedule: ScheduleSpec) -> Any:
    from apscheduler.triggers.cron import CronTrigger
    from apscheduler.triggers.interval import IntervalTrigger

    zone = ZoneInfo(schedule.timezone)
    if schedule.cron is not None:
        return CronTrigger.from_crontab(schedule.cron, timezone=zone)
    return IntervalTrigger(seconds=schedule.every_s, timezone=zone)


def _scheduler(state: Path) -> Any:
    from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
    from apscheduler.schedulers.background import BackgroundScheduler

    state.mkdir(parents=True, exist_ok=True)
    store = SQLAlchemyJobStore(url=f"sqlite:///{state / 'schedules.sqlite'}")
    return BackgroundScheduler(jobstores={"default": store}, executors={"default": {"type": "threadpool",
                                                                                   "max_workers": 4}})


def start_scheduler(spec_path: str | Path, state: Path | None = None, config: str | None = None,
                    settings_args: dict | None = None, max_runs: int | None = None, local: bool = False,
                    echo: Callable[[str], None] = print, stop: threading.Event | None = None) -> int:
    """Run the spec on its schedule until ``stop`` is set, Ctrl-C, or ``max_runs`` runs have ended;
    returns the runs that ended. ``local``: every run in this process, without Ray."""
    from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_EXECUTED, EVENT_JOB_MISSED

    path = str(Path(spec_path).resolve())
    spec = load_job_spec(path)  # a bad spec fails here, before the scheduler starts
    if spec.schedule is None:
        raise ConfigError(f"{spec_path} has no schedule: section (cron: or every:, see docs/schedules.md)")
    check_secrets(spec.notify)
    state = state or default_state()
    scheduler = _scheduler(state)
    trigger = _trigger(spec.schedule)
    args = [path, config, settings_args or {}, local]
    stop = stop or threading.Event()
    ended = 0

    def on_event(event: Any) -> None:
        nonlocal ended
        if event.job_id != spec.name:
            return
        if event.code == EVENT_JOB_MISSED:
            echo(f"schedule {spec.name}: the run due at {event.scheduled_run_time} was missed (past misfire_grace_s)")
            return
        ended += 1
        outcome = f"failed: {event.exception}" if event.exception else event.retval
        echo(f"schedule {spec.name}: run {ended} {outcome}; next at {_next(scheduler, spec.name)}")
        if max_runs is not None and ended >= max_runs:
            stop.set()

    scheduler.add_listener(on_event, EVENT_JOB_EXECUTED | EVENT_JOB_ERROR | EVENT_JOB_MISSED)
    scheduler.start(paused=True)
    try:
        kept = scheduler.get_job(spec.name)
        if kept is None or str(kept.trigger) != str(trigger) or list(kept.args) != args:
            # new, or changed: from now on (an unchanged one keeps its due time, so a missed run still runs)
            scheduler.add_job("vidlake.jobs.schedule:fire", trigger, args=args, id=spec.name, name=spec.name,
                              replace_existing=True, coalesce=True, max_instances=1,
                              misfire_grace_time=int(spec.schedule.misfire_grace_s))
        scheduler.resume()
        echo(f"schedule {spec.name}: {spec.schedule.cron or 'every ' + spec.schedule.every} "
             f"({spec.schedule.timezone}); next run at {_next(scheduler, spec.name)}; state in {state}")
        while not stop.wait(1.0):
            pass
    finally:
        scheduler.shutdown(wait=True)
    return ended


def _next(scheduler: Any, job_id: str) -> str:
    job = scheduler.get_job(job_id)
    return job.next_run_time.isoformat(timespec="seconds") if job and job.next_run_time else "-"


def _interval_s(schedule: ScheduleSpec) -> int:
    """Seconds between two runs (the first two after a fixed day, so exports are reproducible)."""
    trigger = _trigger(schedule)
    first = trigger.get_next_fire_time(None, datetime(2026, 1, 5, tzinfo=timezone.utc))
    return int((trigger.get_next_fire_time(first, first + timedelta(seconds=1)) - first).total_seconds())


def _deadline_s(schedule: ScheduleSpec) -> int:
    """How long one run may take: up to the next one, less a twentieth (at most an hour) to stop in."""
    gap = _interval_s(schedule)
    return max(600, int(gap - min(3600, gap // 20)))


def list_schedules(state: Path | None = None) -> list[dict]:
    """The schedules in the job store: name, trigger, next run, spec."""
    from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore

    path = (state or default_state()) / "schedules.sqlite"
    if not path.exists():
        return []
    store = SQLAlchemyJobStore(url=f"sqlite:///{path}")
    store.start(None, "default")
    try:
        return [{"name": j.id, "trigger": str(j.trigger), "next_run": j.next_run_time, "spec": j.args[0]}
                for j in store.get_all_jobs()]
    finally:
        store.shutdown()


def export_k8s(spec_path: str | Path, out: Path, image: str) -> list[str]:
    """Write the CronJob, the RayJob template, the job spec and a kustomization into ``out``
    (``kubectl apply -k out``); returns warnings about what would not work in a pod. Files the spec
    names on local disk (deployments, media) travel in the ConfigMap, at /specs/<name>."""
    spec = load_job_spec(spec_path)
    if spec.schedule is None or spec.schedule.cron is None:
        raise ConfigError(f"{spec_path}: a Kubernetes CronJob needs schedule.cron (a five-field crontab); "
                          f"every: has no CronJob form")
    if not _K8S_NAME.match(spec.name):
        raise ConfigError(f"the spec's name {spec.name!r} names the CronJob and RayJobs: lowercase letters, digits "
                          f"and '-', at most 42 characters")
    data = yaml.safe_load(Path(spec_path).read_text())
    warnings, files = [], ["rayjob-template.yaml", "job.yaml"]
    rewrites = spec.deployments is not None and any(
        p and "://" not in p for p in (spec.deployments.file, spec.deployments.media))
    if rewrites and Path(spec_path).resolve() == (out / "job.yaml").resolve():
        raise ConfigError(f"--out {out} holds the spec itself, whose local deployments paths the export rewrites to "
                          f"/specs/...: write the manifests into another folder")
    out.mkdir(parents=True, exist_ok=True)
    if spec.deployments is not None:
        for key in ("file", "media"):
            local = getattr(spec.deployments, key)
            if local and "://" not in local:
                source = Path(local) if Path(local).is_absolute() else Path(spec_path).parent / local
                if not source.is_file():
                    raise ConfigError(f"deployments.{key}: {source} is not a file")
                if source.resolve() != (out / source.name).resolve():
                    shutil.copyfile(source, out / source.name)
                data["deployments"][key] = f"/specs/{source.name}"
                files.append(source.name)
    for where, value in [("lake", spec.lake), *((f"sources[{i}]", s) for i, s in enumerate(spec.sources)),
                         *((("report.out", spec.report.out),) if spec.report else ())]:
        if "://" not in value:
            warnings.append(f"{where} is on local disk ({value}): a pod loses it when it ends; use s3://")
    values = {"name": spec.name, "cron": spec.schedule.cron, "timezone": spec.schedule.timezone, "lake": spec.lake,
              "image": image, "misfire_grace_s": str(int(spec.schedule.misfire_grace_s)),
              "deadline_s": str(_deadline_s(spec.schedule)), "interval_s": str(_interval_s(spec.schedule)),
              "files": "\n".join(f"      - {f}" for f in files)}
    for name in ("cronjob.yaml", "rayjob-template.yaml", "kustomization.yaml"):
        text = resources.files("vidlake.jobs").joinpath("k8s", name).read_text()
        for key, value in values.items():
            text = text.replace("{{" + key + "}}", value)
        assert "{{" not in text, f"unfilled placeholder in {name}"
        (out / name).write_text(text)
    job = out / "job.yaml"
    if data == yaml.safe_load(Path(spec_path).read_text()):  # nothing to rewrite: the file as written, comments kept
        if Path(spec_path).resolve() != job.resolve():
            shutil.copyfile(spec_path, job)
    else:
        job.write_text(yaml.safe_dump(data, sort_keys=False))
    return warnings
