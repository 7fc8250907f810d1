"""Exactly once under failure: a driver killed with SIGKILL, a Ray worker killed mid-run."""

import os
import signal
import subprocess
import sys
import threading
import time

import pytest
import yaml

from media import make_video
from tiny_model import tiny_settings  # noqa: F401 - fixture
from vidlake.jobs.run import run_job
from vidlake.jobs.spec import parse_job_spec
from vidlake.platform.config import load_settings
from vidlake.platform.lake import Lake

pytestmark = [pytest.mark.ray, pytest.mark.slow]

COMPARED = ("outputs", "windows", "captions", "tracks", "points", "counts", "answers")


def _archive(root, n=6):
    root.mkdir()
    for i in range(n):
        make_video(root / f"clip{i}.mp4", seconds=3 + i % 3, fps=8, size=(48, 32))
    return root


def _spec_data(src, lake, tiny):
    return {
        "name": "recovery", "sources": [str(src)], "lake": str(lake), "model": tiny.model_dump(),
        "tasks": [{"task": "caption", "max_new_tokens": 12},
                  {"task": "point", "queries": ["the bar"], "max_new_tokens": 12}],
        "sampling": {"fps": 2, "max_frames": 4, "overlap_s": 0.5},
        "resources": {"batch_size": 1}, "commit_every": 1,
    }


def _snapshot(lake_dir):
    lake = Lake(str(lake_dir))
    out = {}
    for table in COMPARED:
        rows = [{k: v for k, v in r.items() if k != "run_id"} for r in lake.read(table).to_pylist()]
        out[table] = sorted(rows, key=repr)
    return out


def test_driver_killed_mid_run_then_rerun_matches_uninterrupted(ray_session, tiny_settings, tmp_path):
    src = _archive(tmp_path / "src")
    lake_dir = tmp_path / "lake"
    spec_file = tmp_path / "job.yaml"
    spec_file.write_text(yaml.safe_dump(_spec_data(src, lake_dir, tiny_settings)))
    address = ray_session.get_runtime_context().gcs_address
    proc = subprocess.Popen(
        [sys.executable, "-m", "vidlake.cli", "run", str(spec_file), "--ray-address", address],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    lake = Lake(str(lake_dir))
    deadline = time.monotonic() + 240
    while proc.poll() is None and time.monotonic() < deadline:
        if lake.exists("outputs") and lake.version("outputs") >= 1:  # some (video, task) pairs committed
            break
        time.sleep(0.2)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    runs = lake.read("runs").to_pylist()
    killed = [r for r in runs if r["job"] == "recovery"]
    assert [r["status"] for r in killed] == ["running"], "the job finished before it could be killed"
    partial = lake.read("outputs").num_rows
    assert 0 < partial

    spec = parse_job_spec(_spec_data(src, lake_dir, tiny_settings))
    resumed = run_job(spec, load_settings(), show=False)
    assert 0 < resumed.windows_planned < 2 * 6 * 3  # only the missing (video, task) pairs ran again

    reference = tmp_path / "reference"
    run_job(parse_job_spec(_spec_data(src, reference, tiny_settings)), load_settings(), show=False)
    assert _snapshot(lake_dir) == _snapshot(reference)


def test_killed_model_worker_is_retried(ray_session, tiny_settings, tmp_path):
    import ray._private.state as ray_state  # the GCS actor table (the state API needs the dashboard)

    src = _archive(tmp_path / "src", n=4)
    spec = parse_job_spec(_spec_data(src, tmp_path / "lake", tiny_settings))
    killed: list[int] = []

    def kill_model_actor():
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not killed:
            for actor in ray_state.actors().values():
                if "RunModel" in actor["ActorClassName"] and actor["State"] == "ALIVE" and actor["Pid"]:
                    time.sleep(1.0)  # let it take work first
                    os.kill(actor["Pid"], signal.SIGKILL)
                    killed.append(actor["Pid"])
                    return
            time.sleep(0.2)

    killer = threading.Thread(target=kill_model_actor, daemon=True)
    killer.start()
    result = run_job(spec, load_settings(), show=False)
    killer.join(timeout=5)
    assert killed, "no model worker was found to kill"
    assert result.windows_ok == result.windows_planned and result.windows_failed == 0
    assert Lake(spec.lake).read("outputs").num_rows == result.windows_planned
