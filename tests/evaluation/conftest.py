"""Shared by the evaluation tests: a small synthetic world and the lake the oracle engine makes of it."""

from __future__ import annotations

from pathlib import Path

import pytest

from vidlake.evaluation.synth import make_synthetic
from vidlake.jobs.run import run_job
from vidlake.jobs.spec import parse_job_spec
from vidlake.platform.config import load_settings
from vidlake.platform.lake import Lake
from vidlake.platform.runtime.executors import LocalExecutor

QUERIES = ("shapes", "circles", "red squares")


@pytest.fixture(scope="session")
def queries() -> tuple[str, ...]:
    """What the oracle lake's count, point and track tasks asked."""
    return QUERIES


@pytest.fixture(scope="session")
def world(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("world")
    make_synthetic(root, videos=5, seed=3, max_seconds=20)  # every kind (mp4, webm, VFR, rotated); 20 s: 6+ windows
    return root


@pytest.fixture(scope="session")
def lake(world, tmp_path_factory) -> Lake:
    lake_dir = tmp_path_factory.mktemp("oracle-lake")
    tasks = [{"task": "caption"}]
    for kind in ("count", "point", "track"):
        tasks += [{"task": kind, "queries": list(QUERIES)}]
    tasks += [{"task": "count", "queries": list(QUERIES), "windows": "fast"}]  # one answer per video
    spec = parse_job_spec({
        "name": "oracle", "sources": [str(world / "videos")], "lake": str(lake_dir),
        "model": {"name": f"oracle:{world}"}, "tasks": tasks,
        "sampling": {"fps": 2, "max_frames": 8, "overlap_s": 1.0, "size": 126, "fast_pass": True},
    })
    result = run_job(spec, load_settings(), show=False, executor=LocalExecutor())
    assert result.windows_failed == 0 and result.windows_ok > 0
    return Lake(str(lake_dir))


