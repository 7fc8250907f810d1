"""The Ray Data pipeline of the main job: operators wired with their resources (Ray lives here only)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from vidlake.jobs.spec import JobSpec
from vidlake.models.molmo2 import ModelRef
from vidlake.models.prompts import PromptRegistry
from vidlake.operators.infer import InferConfig, RunModel
from vidlake.operators.prompt import BuildPrompt, PromptConfig
from vidlake.operators.sample import SampleConfig, SampleFrames
from vidlake.operators.tasks import ExpandTasks, PendingTask
from vidlake.platform.config import Settings
from vidlake.platform.runtime import ensure_ray, ray_remote_args

__all__ = ["build_pipeline", "model_gpus", "NicedSampleFrames", "WarmRunModel"]

# Ray Data reserves CPU for upstream operators first: once decode tasks and the model actor hold every
# CPU, a light operator that asks for CPU of its own waits until decoding frees one. So ExpandTasks runs
# in the decode task (same resources: Ray Data fuses the two), BuildPrompt in the model actor's, and
# windows are planned before the pipeline and parsed after it, on the driver (arithmetic and
# milliseconds per window). Measured on 2 CPUs before: the model idled while decoded windows waited
# for ExpandTasks, and no window reached the writer (nothing was committed) until every window was
# decoded.
MAX_BLOCKS = 20_000  # window rows per block grow past this many windows (a block is one decode task)


class WarmRunModel(RunModel):
    """RunModel that loads the checkpoint when its actor starts, so the load overlaps the first decodes
    instead of delaying the first batch (the constructor runs in the actor, never on the driver)."""

    def __init__(self, config: InferConfig):
        super().__init__(config)
        self.load()


@dataclass(frozen=True)
class NicedSampleFrames(SampleFrames):
    """SampleFrames that first lowers its worker process's CPU priority by ``niceness`` (once per process).

    Decode tasks and the model actor share a node's cores. At equal priority a busy decoder slows the
    model's start (its imports and load) and its batches, and the model is the stage that sets the pace
    (the GPU's, on a GPU node). Niced decoders are served after the model and take what it leaves.
    Measured on 2 CPUs: the model's first call 11.9 -> 8.8-9.8 s into a job (benchmarks/results/pipeline.md).
    """

    niceness: int = 0

    def __call__(self, row: dict[str, Any]) -> dict[str, Any]:
        _lower_priority(self.niceness)
        return super().__call__(row)


_lowered = False  # this process is niced already (a Ray worker runs many decode tasks; children inherit it)


def _lower_priority(niceness: int) -> None:
    global _lowered
    if niceness > 0 and not _lowered:
        _lowered = True
        try:
            os.nice(niceness)
        except OSError:  # not permitted here: decode at the worker's priority
            pass


def model_gpus(spec: JobSpec) -> float:
    """GPUs per model replica: the spec's number, or for "auto" 1 when the cluster has GPUs, else 0."""
    import ray

    if spec.resources.gpus_per_replica != "auto":
        return float(spec.resources.gpus_per_replica)
    return 1.0 if ray.cluster_resources().get("GPU", 0) >= 1 else 0.0


def build_pipeline(spec: JobSpec, settings: Settings, ref: ModelRef, tasks: list[PendingTask], windows: list[dict]) -> Any:
    """Planned window rows (``PlanWindows`` output, see ``analyze.plan_rows``) -> model output rows.

    One window per block, so one decode task per window: a long video's windows decode in parallel and
    reach the model as they are done. Rows come out unparsed (``ParseOutput`` runs on the driver).
    """
    import ray

    ensure_ray(settings.ray)
    res = spec.resources
    gpus = model_gpus(spec)
    registry = PromptRegistry.with_user_templates(spec.model.templates)
    templates = {t.template: registry.get(t.template) for t in tasks}
    sample = NicedSampleFrames(SampleConfig(sampling=spec.sampling, storage=settings.storage), res.decode_niceness)
    prompt = BuildPrompt(PromptConfig(model=ref, templates=templates, settings=spec.model))
    infer = InferConfig(model=ref, settings=spec.model, batch_size=res.batch_size)

    ds = ray.data.from_items(windows, override_num_blocks=max(1, min(len(windows), MAX_BLOCKS)))
    decode = ray_remote_args(SampleFrames.resources, {"num_cpus": res.decode_cpus})
    ds = ds.map(sample, **decode)
    ds = ds.flat_map(ExpandTasks(tuple(tasks)), **decode)
    ds = ds.map(prompt, **ray_remote_args(BuildPrompt.resources))
    return ds.map_batches(
        WarmRunModel,
        fn_constructor_args=(infer,),
        batch_size=res.batch_size,
        batch_format="default",
        concurrency=res.replicas,
        num_gpus=gpus,
        num_cpus=res.model_cpus,
    )
