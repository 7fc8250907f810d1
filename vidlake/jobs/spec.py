"""A job, described by one pydantic model that loads from YAML (see examples/ and docs/jobs.md)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from vidlake.analysis.spec import Analysis, AnalysisFile, DeploymentsSpec
from vidlake.errors import ConfigError, invalid
from vidlake.models.molmo2 import ModelRef
from vidlake.models.prompts import PromptRegistry, PromptTemplate, Task
from vidlake.operators.plan import sampling_spec
from vidlake.operators.tasks import PendingTask
from vidlake.platform.config import ModelSettings, SamplingSettings, Settings, read_yaml_mapping
from vidlake.platform.lake.ids import TaskIdentity
from vidlake.platform.notify import WebhookSpec

__all__ = [
    "JobSpec", "ReportSpec", "ResourcesSpec", "ScheduleSpec", "TaskRun", "TaskSpec", "load_job_spec",
    "parse_job_spec", "resolve_tasks", "shorthand_spec", "task_run",
]

_NEEDS_QUERY = {"qa", "point", "count", "track", "ground"}


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class TaskSpec(_Spec):
    """What to ask. One entry may carry several queries; each (task, query) is one ``task_key``."""

    task: Task
    queries: list[str] = Field(default_factory=list, description="qa: questions; point/count/track/ground: what to find.")
    prompt: str | None = Field(None, description="Prompt template name (a built-in or one of model.templates).")
    max_new_tokens: int | None = Field(None, ge=1, le=32768)
    windows: Literal["slow", "fast"] = Field(
        "slow", description="slow: every dense window; fast: the one sparse sweep of the whole video."
    )

    @model_validator(mode="after")
    def _queries(self) -> "TaskSpec":
        if self.task in _NEEDS_QUERY and not self.queries and self.prompt is None:
            raise ValueError(f"task {self.task!r} needs queries")
        if any(not q.strip() for q in self.queries):
            raise ValueError("queries must not be empty strings")
        return self


class ResourcesSpec(_Spec):
    """How the job uses the cluster. The job applies these; operators only carry defaults."""

    gpus_per_replica: float | Literal["auto"] = Field(
        "auto", description="GPUs per model replica; 0 runs the model on CPU. auto: 1 when the cluster has GPUs; "
        "on a Ray of this machine alone without GPUs, 0 (said in the output); on a cluster without GPUs an error "
        "(a GPU worker group scaled to zero would otherwise mean CPU inference nobody asked for).",
    )
    replicas: int | tuple[int, int] = Field(
        1, description="Model replicas (actors): a count, or [min, max] for a pool that grows with the cluster "
        "(an autoscaling cluster adds the nodes; the job then waits for GPUs instead of failing).",
    )
    batch_size: int = Field(4, ge=1, description="Windows per generate call.")
    decode_cpus: float = Field(1.0, gt=0, description="CPUs per frame-sampling task.")
    model_cpus: float = Field(1.0, gt=0, description="CPUs per model replica.")
    decode_niceness: int = Field(
        5, ge=0, le=19,
        description="How much lower than the model the decode tasks' CPU priority is (a Linux nice increment, "
                    "0 = equal): where they share cores, the model is served first.",
    )

    @field_validator("replicas")
    @classmethod
    def _replicas(cls, value: int | tuple[int, int]) -> int | tuple[int, int]:
        low, high = (value, value) if isinstance(value, int) else value
        if low < 1 or high < low:
            raise ValueError(f"replicas must be >= 1, or [min, max] with 1 <= min <= max (got {value})")
        return value


_EVERY = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d)\s*$")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400}


class ScheduleSpec(_Spec):
    """When ``vidlake schedule`` runs the spec: a cron expression or a fixed interval, in a time zone."""

    cron: str | None = Field(None, description="Five-field crontab expression (minute hour day month weekday), "
                             "e.g. '0 2 * * *' for 02:00 every day.")
    every: str | None = Field(None, description="A fixed interval instead: '30s', '10m', '6h', '1d'.")
    timezone: str = Field("UTC", description="IANA time zone of the cron expression.")
    lease_ttl_s: float = Field(300.0, ge=10, description="How long a crashed run keeps the schedule's lease "
                               "before the next run may take it (renewed every third of it while a run goes).")
    misfire_grace_s: float = Field(3600.0, ge=1, description="Runs missed while the scheduler was down run once "
                                   "when it is back if the latest was due less than this ago; else skipped.")

    @model_validator(mode="after")
    def _one_trigger(self) -> "ScheduleSpec":
        if (self.cron is None) == (self.every is None):
            raise ValueError("schedule needs exactly one of cron: or every:")
        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {self.timezone!r} (an IANA name, e.g. Europe/Berlin)") from None
        if self.cron is not None:
            from apscheduler.triggers.cron import CronTrigger

            try:
                CronTrigger.from_crontab(self.cron, timezone=ZoneInfo(self.timezone))
            except ValueError as exc:
                raise ValueError(f"cron expression {self.cron!r} does not parse: {exc} (five fields: minute hour "
                                 f"day-of-month month day-of-week, e.g. '0 2 * * *')") from None
        else:
            self.every_s
        return self

    @property
    def every_s(self) -> float | None:
        if self.every is None:
            return None
        match = _EVERY.match(self.every)
        if not match or float(match[1]) <= 0:
            raise ValueError(f"every: {self.every!r} is not an interval like '30s', '10m', '6h' or '1d'")
        return float(match[1]) * _UNIT_S[match[2]]


class ReportSpec(_Spec):
    """Where the report of the spec's analyses (or of the whole lake) goes after each run."""

    out: str = Field(description="Folder (local or s3://) for the HTML pages, CSV and Parquet files.")


class TaskRun(_Spec):
    """One expanded task with its template resolved: the template, an optional query, the windows it runs on."""

    task: str
    template: PromptTemplate
    query: str | None
    max_new_tokens: int | None
    windows: str


def task_run(registry: PromptRegistry, task: str, prompt: str | None, query: str | None,
             max_new_tokens: int | None = None, windows: str = "slow") -> TaskRun:
    """Resolve one (task, prompt template name, query); a template for another task or a missing query
    is a ``ConfigError``. The one place where a job's (or ``vidlake ask``'s) templates are looked up."""
    template = registry.get(prompt or task)
    if template.task != task:
        raise ConfigError(f"prompt {template.name!r} is for task {template.task!r}, not {task!r}")
    if template.needs_query and not (query and query.strip()):
        raise ConfigError(f"prompt {template.name!r} needs queries")
    return TaskRun(task=task, template=template, query=query, max_new_tokens=max_new_tokens, windows=windows)


def resolve_tasks(runs: list[TaskRun], ref: ModelRef, sampling: SamplingSettings,
                  images: bool = False) -> tuple[PendingTask, ...]:
    """Each task run with its identity (and so its ``task_key``) for this pinned model and sampling.

    ``images``: also each dense-window task as it runs on image sets (``windows="set"``): the template's
    image variant and the sets' sampling, so a task key of its own."""
    tasks = [
        PendingTask(TaskIdentity(r.task, r.template.fingerprint, r.query, ref.model_id, ref.revision,
                                 sampling_spec(sampling, r.windows), ref.engine_key), r.template, r.windows,
                    r.max_new_tokens)
        for r in runs
    ]
    if images:
        tasks += [
            PendingTask(TaskIdentity(r.task, r.template.for_images().fingerprint, r.query, ref.model_id, ref.revision,
                                     sampling_spec(sampling, "set"), ref.engine_key), r.template.for_images(), "set",
                        r.max_new_tokens)
            for r in runs if r.windows == "slow"
        ]
    return tuple(tasks)


class JobSpec(_Spec):
    """Everything a run needs: where the videos are, what to ask, which model, how to sample, where to write."""

    name: str = "job"
    sources: list[str] = Field(min_length=1)
    lake: str = "./lake"
    tasks: list[TaskSpec] = Field(min_length=1)
    model: ModelSettings = ModelSettings()
    sampling: SamplingSettings = SamplingSettings()
    resources: ResourcesSpec = ResourcesSpec()
    failure_budget: float = Field(
        0.2, ge=0, le=1, description="Largest fraction of windows that may fail before the run is failed."
    )
    retry_failed: int = Field(
        2, ge=0, description="How many later runs try a (video, task) again whose windows failed (each replacing "
                             "its rows); past that it stays as it is, listed by `vidlake status`.",
    )
    commit_every: int = Field(
        32, ge=1, description="Commit after this many (video, task) pairs are complete (or every 30 s)."
    )
    deployments: DeploymentsSpec | None = Field(None, description="Where and when the footage was recorded "
                                                "(docs/analysis.md); needed by analyses.")
    analyses: list[Analysis] = Field(default_factory=list, description="Run after the job, on its lake, as "
                                     "`vidlake analyze` would (docs/analysis.md).")
    report: ReportSpec | None = Field(None, description="Write the report after the job and its analyses "
                                      "(docs/reports.md).")
    notify: list[WebhookSpec] = Field(default_factory=list, description="Webhooks called when the run ends "
                                      "(docs/schedules.md).")
    schedule: ScheduleSpec | None = Field(None, description="When `vidlake schedule start` runs this spec "
                                          "(docs/schedules.md).")

    @model_validator(mode="after")
    def _analyses_need_deployments(self) -> "JobSpec":
        if self.analyses and self.deployments is None:
            raise ValueError("analyses need a deployments: section (file, path_pattern)")
        return self

    def analysis_file(self) -> AnalysisFile | None:
        """The spec's analyses as an analysis file on the job's lake, or None."""
        if not self.analyses:
            return None
        return AnalysisFile(lake=self.lake, deployments=self.deployments, analyses=self.analyses)

    @model_validator(mode="after")
    def _templates(self) -> "JobSpec":
        if any(t.windows == "fast" for t in self.tasks) and not self.sampling.fast_pass:
            raise ValueError("a task runs on the fast window: set sampling.fast_pass: true")
        try:
            self.task_runs()
        except ConfigError as exc:
            raise ValueError(str(exc)) from None
        return self

    def task_runs(self) -> list[TaskRun]:
        """Every (task, query) of the spec, its prompt template resolved."""
        registry = PromptRegistry.with_user_templates(self.model.templates)
        return [task_run(registry, t.task, t.prompt, query, t.max_new_tokens, t.windows)
                for t in self.tasks for query in t.queries or [None]]


def load_job_spec(path: str | Path, **overrides) -> JobSpec:
    """Read and validate a job spec; every problem becomes one ``ConfigError`` line."""
    path = Path(path)
    data = read_yaml_mapping(path, "job spec", "a mapping of fields (sources, tasks, ...)")
    data.update({k: v for k, v in overrides.items() if v is not None})
    return parse_job_spec(data, str(path))


def parse_job_spec(data: dict, where: str = "job spec") -> JobSpec:
    try:
        return JobSpec.model_validate(data)
    except ValidationError as exc:
        problems = invalid(exc)
        raise ConfigError(f"invalid {where}: {problems}") from None


def shorthand_spec(
    settings: Settings,
    sources: list[str],
    point: list[str] | None = None,
    count: list[str] | None = None,
    track: list[str] | None = None,
    ask: list[str] | None = None,
    name: str = "caption",
) -> JobSpec:
    """The spec behind ``vidlake caption``: captions, plus the optional point/count/track/qa tasks."""
    tasks: list[dict] = [{"task": "caption"}]
    for task, queries in (("point", point), ("count", count), ("track", track), ("qa", ask)):
        if queries:
            tasks.append({"task": task, "queries": list(queries)})
    return parse_job_spec({"name": name, "sources": list(sources), "lake": settings.lake.uri, "tasks": tasks,
                           "model": settings.model.model_dump(), "sampling": settings.sampling.model_dump()},
                          "command line")
