"""A science lake made with the synthetic world and the oracle engine, shared by the report, export and
schedule tests: two dated deployments (a pond with two videos, a marsh with one), counts and tracks
through the job, and the job spec's analyses (hourly counts; tracks with a line and a zone) after it."""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import yaml

from vidlake.evaluation.synth import make_synthetic
from vidlake.jobs.run import run_job
from vidlake.jobs.spec import load_job_spec
from vidlake.platform.config import load_settings
from vidlake.platform.runtime.executors import LocalExecutor

BERLIN = ZoneInfo("Europe/Berlin")
DEPLOYMENTS = """deploymentID,locationID,locationName,cameraID,latitude,longitude,deploymentStart,deploymentEnd,timezone,pixelsPerMetre
pond-1,loc-pond,pond,cam1,52.1,5.1,2026-05-01T00:00:00+02:00,2026-07-01T00:00:00+02:00,Europe/Berlin,100
marsh-1,loc-marsh,marsh,cam2,52.2,5.2,2026-05-01T00:00:00+02:00,2026-07-01T00:00:00+02:00,Europe/Berlin,
"""
# video index -> (folder, start): every video is dated by a sidecar
PLACES = {0: ("pond/cam1", datetime(2026, 6, 1, 8, 59, 50, tzinfo=BERLIN)),
          1: ("pond/cam1", datetime(2026, 6, 1, 10, 30, tzinfo=BERLIN)),
          2: ("marsh/cam2", datetime(2026, 6, 2, 6, 15, tzinfo=BERLIN))}


@dataclass(frozen=True)
class ScienceLake:
    world: Path  # the synthetic world's truth folder (oracle:<world>)
    src: Path  # the archive: <site>/<camera>/<video> with .json sidecars
    lake: Path
    spec: Path  # the job spec (YAML) that made the lake: tasks, deployments, analyses


@pytest.fixture(scope="session")
def science_world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("science-world")
    make_synthetic(root, videos=3, seed=11, max_seconds=20, short_seconds=(12, 20), echo=None)
    return root


def add_videos(world: Path, src: Path, indices: list[int]) -> None:
    """Copy the world's videos ``indices`` into the archive, each with a sidecar naming its start."""
    files = sorted((world / "videos").iterdir())
    for i in indices:
        folder, start = PLACES[i]
        (src / folder).mkdir(parents=True, exist_ok=True)
        shutil.copy(files[i], src / folder / files[i].name)
        (src / folder / (files[i].name + ".json")).write_text(json.dumps({"start": start.isoformat()}))


def write_science_spec(world: Path, root: Path, indices: list[int] = [0, 1, 2], **extra) -> Path:
    """An archive of the videos ``indices`` under ``root``, its deployments file and a job spec that
    counts and tracks shapes with the oracle and runs the analyses; returns the spec's path."""
    src, lake = root / "src", root / "lake"
    add_videos(world, src, indices)
    (root / "deployments.csv").write_text(DEPLOYMENTS)
    spec = {
        "name": "science",
        "sources": [str(src)],
        "lake": str(lake),
        "model": {"name": f"oracle:{world}"},
        "tasks": [{"task": "count", "queries": ["shapes", "circles"]}, {"task": "track", "queries": ["shapes"]}],
        "sampling": {"fps": 2, "max_frames": 8, "overlap_s": 1.0, "size": 126},
        "deployments": {"file": str(root / "deployments.csv"), "path_pattern": "{locationName}/{cameraID}/*",
                        "roots": [str(src)]},
        "analyses": [
            {"name": "hourly", "version": 1, "kind": "counts", "queries": ["shapes", "circles"], "bin": "hour"},
            {"name": "paths", "version": 1, "kind": "tracks", "queries": ["shapes"],
             "lines": {"pond-1": [{"name": "middle", "start": [0.5, 0.0], "end": [0.5, 1.0]}]},
             "zones": {"pond-1": [{"name": "right", "polygon": [[0.5, 0], [1, 0], [1, 1], [0.5, 1]]}]}},
        ],
        **extra,
    }
    path = root / "job.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


@pytest.fixture(scope="session")
def science_lake(science_world: Path, tmp_path_factory: pytest.TempPathFactory) -> ScienceLake:
    """Read-only for tests: copy it (``shutil.copytree``) before writing to it."""
    root = tmp_path_factory.mktemp("science")
    spec = write_science_spec(science_world, root)
    run_job(load_job_spec(spec), load_settings(), show=False, executor=LocalExecutor())
    return ScienceLake(world=science_world, src=root / "src", lake=root / "lake", spec=spec)
