"""vidlake on a real two-node Ray cluster on this machine, as a user runs it through RAY_ADDRESS.

The head starts with ``--num-cpus=0`` (as in infra/k8s) from its own working folder; the second node
runs in its own mount namespace (``unshare -m``) with a tmpfs over this test's private folders, so it
cannot see the driver's files (the tiny model, a local source), and declares a GPU (``--num-gpus=1``)
and a custom resource. Sources and lake are on the loopback S3 server. Every process gets the same
``RAY_AUTH_MODE``; the nodes are stopped by their process ids.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import boto3
import pytest
import yaml

from media import make_video
from serve.conftest import http_get
from tiny_model import tiny_settings  # noqa: F401 - fixture
from vidlake.platform.config import StorageSettings
from vidlake.platform.lake import Lake
from vidlake.platform.runtime.cluster import free_port

pytestmark = [pytest.mark.ray, pytest.mark.slow, pytest.mark.timeout(900),
              pytest.mark.skipif(shutil.which("unshare") is None or os.geteuid() != 0,
                                 reason="the second node needs `unshare -m` and root for its tmpfs")]

VIDLAKE = str(Path(sys.executable).with_name("vidlake"))
RAY = str(Path(sys.executable).with_name("ray"))


class Cluster:
    """A head and a worker node started with ``ray start --block``; ``stop`` ends both by pid."""

    def __init__(self, root: Path, private: list[Path], env: dict[str, str]):
        self.port, self.dashboard = free_port(), free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.env = env
        self.logs = root / "logs"
        self.logs.mkdir()
        head_dir = root / "head"
        head_dir.mkdir()
        # a short temp dir outside the private folders (Unix socket paths are limited to 107 bytes)
        self.temp = Path(tempfile.mkdtemp(prefix="vlc-", dir="/tmp"))
        self.procs: list[subprocess.Popen] = []
        self._start([RAY, "start", "--head", "--block", f"--port={self.port}", "--num-cpus=0", "--num-gpus=0",
                     "--node-ip-address=127.0.0.1", f"--temp-dir={self.temp}", "--include-dashboard=true",
                     "--dashboard-host=127.0.0.1", f"--dashboard-port={self.dashboard}", "--disable-usage-stats"],
                    head_dir, "head")
        self._wait_nodes(1)
        hide = " && ".join(f"mount -t tmpfs tmpfs {p}" for p in private)
        worker = [RAY, "start", "--block", f"--address={self.address}", "--num-cpus=2", "--num-gpus=1",
                  "--resources={\"video_node\": 1}", "--node-ip-address=127.0.0.1", "--disable-usage-stats"]
        self._start(["unshare", "-m", "--propagation", "private", "sh", "-c",
                     f"{hide} && exec {' '.join(_quote(a) for a in worker)}"], root, "worker")
        self._wait_nodes(2)
        self.worker_node_id = self.state("nodes", lambda r: not r["is_head_node"])[0]["node_id"]

    def _start(self, cmd: list[str], cwd: Path, name: str) -> None:
        log = open(self.logs / f"{name}.log", "wb")
        self.procs.append(subprocess.Popen(cmd, cwd=cwd, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                           start_new_session=True))

    def _wait_nodes(self, n: int) -> None:
        deadline = time.monotonic() + 120
        while True:
            for p in self.procs:
                assert p.poll() is None, self.log_tail()
            try:
                if len(self.state("nodes", lambda r: r["state"] == "ALIVE")) >= n:
                    return
            except (AssertionError, OSError, ValueError):
                pass
            assert time.monotonic() < deadline, self.log_tail()
            time.sleep(1)

    def state(self, kind: str, keep=lambda row: True) -> list[dict]:
        """Rows of Ray's state API (``nodes``, ``tasks``, ``actors``) for which ``keep(row)`` holds, read in
        a subprocess (the test process has a Ray of its own)."""
        code = (f"import json; from ray.util import state; rows = state.list_{kind}(address='http://127.0.0.1:"
                f"{self.dashboard}', limit=10000, detail=True, raise_on_missing_output=False); "
                "print(json.dumps([r if isinstance(r, dict) else r.__dict__ for r in rows], default=str))")
        out = subprocess.run([sys.executable, "-c", code], env=self.env, capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stderr[-2000:]
        return [r for r in json.loads(out.stdout) if keep(r)]

    def log_tail(self) -> str:
        return "\n".join(f"--- {f.name}\n{f.read_text(errors='replace')[-1500:]}" for f in self.logs.glob("*.log"))

    def stop(self) -> None:
        for p in reversed(self.procs):  # `ray start --block` stops its node's processes on SIGTERM
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in reversed(self.procs):
            try:
                p.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait(10)
        shutil.rmtree(self.temp, ignore_errors=True)


def _alive(class_part: str):
    return lambda r: class_part in (r["class_name"] or "") and r["state"] == "ALIVE"


def _quote(arg: str) -> str:
    return "'" + arg.replace("'", "'\"'\"'") + "'"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory, s3_endpoint, tiny_settings):
    root = tmp_path_factory.mktemp("cluster")
    env = {**os.environ, "RAY_AUTH_MODE": "disabled", "VIDLAKE_STORAGE__ENDPOINT_URL": s3_endpoint}
    env.pop("RAY_ADDRESS", None)
    # the folders only the driver sees: pytest's temp root (the tiny model, local sources, the driver's cwd)
    private = [tmp_path_factory.getbasetemp()]
    c = Cluster(root, private, env)
    c.env = {**env, "RAY_ADDRESS": c.address}
    yield c
    c.stop()


def _vidlake(cluster: Cluster, cwd: Path, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([VIDLAKE, *args], cwd=cwd, env=cluster.env, capture_output=True, text=True, timeout=timeout)


def test_ingest_run_index_serve_on_two_nodes(cluster, s3_endpoint, s3_bucket, tiny_settings, tmp_path):
    s3 = boto3.client("s3", endpoint_url=s3_endpoint)
    for i in range(2):
        make_video(tmp_path / f"clip{i}.mp4", seconds=3 + i, fps=8, size=(48, 32))
        s3.upload_file(str(tmp_path / f"clip{i}.mp4"), s3_bucket, f"src/clip{i}.mp4")
    source, lake_uri = f"s3://{s3_bucket}/src", f"s3://{s3_bucket}/lake"
    driver = tmp_path / "driver"  # not the head's folder
    driver.mkdir()
    spec = driver / "job.yaml"
    spec.write_text(yaml.safe_dump({
        "name": "cluster", "sources": [source], "lake": lake_uri, "model": tiny_settings.model_dump(),
        "tasks": [{"task": "caption", "max_new_tokens": 8}],
        "sampling": {"fps": 2, "max_frames": 4, "overlap_s": 0.5}, "resources": {"batch_size": 2, "gpus_per_replica": 0},
    }))

    out = _vidlake(cluster, driver, "ingest", source, "--lake", lake_uri)
    assert out.returncode == 0, out.stderr[-3000:] + cluster.log_tail()
    out = _vidlake(cluster, driver, "run", str(spec))
    assert out.returncode == 0, out.stderr[-3000:] + cluster.log_tail()
    lake = Lake(lake_uri, StorageSettings(endpoint_url=s3_endpoint))
    run = [r for r in lake.read("runs").to_pylist() if r["job"] == "cluster"]
    assert [r["status"] for r in run] == ["completed"]
    versions = {t: lake.version(t) for t in ("outputs", "windows", "captions")}
    captions = lake.read("captions").to_pylist()
    assert len({c["video_id"] for c in captions}) == 2 and lake.read("errors").num_rows == 0

    # where the work ran: probes, decodes and the model actor on the second node (the head has no CPUs)
    kinds = ("ProbeMedia", "SampleFrames", "RunModel")
    tasks = cluster.state("tasks", lambda r: any(k in (r["name"] or "") for k in kinds))
    ran = {(k, t["node_id"]) for t in tasks for k in kinds if k in t["name"] and t["node_id"]}  # None: never scheduled
    assert {k for k, _ in ran} == {"ProbeMedia", "SampleFrames", "RunModel"}, tasks
    assert {node for _, node in ran} == {cluster.worker_node_id}, ran
    actors = cluster.state("actors", lambda r: "RunModel" in (r["class_name"] or ""))
    assert actors and {a["node_id"] for a in actors} == {cluster.worker_node_id}

    again = _vidlake(cluster, driver, "run", str(spec))  # a re-run writes nothing
    assert again.returncode == 0, again.stderr[-3000:]
    assert {t: lake.version(t) for t in versions} == versions

    out = _vidlake(cluster, driver, "index", "--lake", lake_uri)
    assert out.returncode == 0 and "texts embedded" in out.stdout, out.stderr[-3000:]
    port = free_port()
    log = driver / "serve.log"
    serve = subprocess.Popen([VIDLAKE, "serve", "--lake", lake_uri, "--port", str(port)], cwd=driver,
                             env=cluster.env, stdout=open(log, "w"), stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 240
        while "Ctrl-C stops it" not in log.read_text():
            assert serve.poll() is None and time.monotonic() < deadline, log.read_text()[-3000:] + cluster.log_tail()
            time.sleep(1)
        word = next(w for c in captions for w in c["text"].split() if w.isalpha() and len(w) > 3)
        status, headers, body = http_get(f"http://127.0.0.1:{port}/search?q={word}&mode=bm25&k=5")
        assert status == 200 and headers["x-vidlake-index"] == "ready" and json.loads(body)["hits"], body
        replicas = cluster.state("actors", _alive("ServeReplica:vidlake"))
        assert replicas and {a["node_id"] for a in replicas} == {cluster.worker_node_id}
    finally:
        serve.send_signal(signal.SIGINT)
        serve.wait(120)
    assert serve.returncode == 0, log.read_text()[-3000:]
    # stopping a service in a joined cluster deletes its app, not the cluster's Serve
    deadline = time.monotonic() + 60
    while cluster.state("actors", _alive("ServeReplica:vidlake")):
        assert time.monotonic() < deadline
        time.sleep(1)
    assert cluster.state("actors", _alive("ServeController"))


def test_what_the_other_node_cannot_see_fails_at_once(cluster, s3_endpoint, s3_bucket, tiny_settings, tmp_path):
    """A local source on a two-node cluster stops before any work with what to do and leaves no error rows;
    a model folder that only the driver has fails the run with the cause, not an ActorDiedError."""
    local = tmp_path / "videos"
    local.mkdir()
    make_video(local / "a.mp4", seconds=2, fps=8, size=(48, 32))
    lake_uri = f"s3://{s3_bucket}/lake"
    lake = Lake(lake_uri, StorageSettings(endpoint_url=s3_endpoint))
    out = _vidlake(cluster, tmp_path, "ingest", str(local), "--lake", lake_uri)
    assert out.returncode == 2, out.stderr
    assert out.stderr.strip().startswith(f"error: source {local} is a local path, but the Ray cluster has 2 nodes")
    assert "ray.shared_paths" in out.stderr
    assert not lake.exists("errors") and not lake.exists("videos")
    # with no address, a command starts a Ray of its own even while this cluster runs on the machine (had
    # it attached, the local source would be refused as above)
    alone = {k: v for k, v in cluster.env.items() if k != "RAY_ADDRESS"}
    out = subprocess.run([VIDLAKE, "ingest", str(local), "--lake", str(tmp_path / "lake")], cwd=tmp_path, env=alone,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0 and "new videos" in out.stdout, out.stderr[-3000:]

    boto3.client("s3", endpoint_url=s3_endpoint).upload_file(
        str(local / "a.mp4"), s3_bucket, "src/a.mp4")
    model = tmp_path / "my-molmo2"  # a copy of the tiny checkpoint in a folder only the driver sees
    shutil.copytree(tiny_settings.tiny_dir, model)
    spec = tmp_path / "job.yaml"
    spec.write_text(yaml.safe_dump({
        "name": "no-model", "sources": [f"s3://{s3_bucket}/src"], "lake": lake_uri,
        "model": {"name": str(model), "local_files_only": True}, "tasks": [{"task": "caption", "max_new_tokens": 8}],
        "sampling": {"fps": 2, "max_frames": 4}, "resources": {"gpus_per_replica": 0},
    }))
    out = _vidlake(cluster, tmp_path, "run", str(spec))
    assert out.returncode == 2, out.stderr[-3000:]
    assert f"model folder {model} does not exist on node" in out.stderr and "ActorDiedError" not in out.stderr
    runs = [r for r in lake.read("runs").to_pylist() if r["job"] == "no-model"]
    assert [r["status"] for r in runs] == ["failed"] and "does not exist on node" in runs[0]["message"]

    spec.write_text(spec.read_text().replace("gpus_per_replica: 0", "gpus_per_replica: 2"))
    out = _vidlake(cluster, tmp_path, "run", str(spec))
    assert out.returncode == 2 and "gpus_per_replica is 2, but the Ray cluster has 1 GPUs" in out.stderr, out.stderr


def test_a_model_folder_on_s3_is_copied_to_the_node_that_runs_it(cluster, s3_endpoint, s3_bucket, tiny_settings,
                                                                 tmp_path):
    """``model.name: s3://...``: the driver pins the folder's content hash and reads only its small files; the
    second node (which cannot see the driver's cache folder) copies the whole folder, checks it, and runs it."""
    s3 = boto3.client("s3", endpoint_url=s3_endpoint)
    make_video(tmp_path / "a.mp4", seconds=2, fps=8, size=(48, 32))
    s3.upload_file(str(tmp_path / "a.mp4"), s3_bucket, "src/a.mp4")
    for f in Path(tiny_settings.tiny_dir).iterdir():
        if f.is_file():
            s3.upload_file(str(f), s3_bucket, f"models/my-molmo2/{f.name}")
    cache, lake_uri, model_uri = tmp_path / "model-cache", f"s3://{s3_bucket}/lake", f"s3://{s3_bucket}/models/my-molmo2"
    spec = tmp_path / "job.yaml"
    spec.write_text(yaml.safe_dump({
        "name": "s3-model", "sources": [f"s3://{s3_bucket}/src"], "lake": lake_uri,
        "model": {"name": model_uri, "cache_dir": str(cache), "local_files_only": True},
        "tasks": [{"task": "caption", "max_new_tokens": 8}], "sampling": {"fps": 2, "max_frames": 4},
        "resources": {"gpus_per_replica": 0},
    }))
    out = _vidlake(cluster, tmp_path, "run", str(spec))
    assert out.returncode == 0, out.stderr[-3000:] + cluster.log_tail()
    assert f"model {model_uri} copied to" in out.stdout + out.stderr  # by the model actor on the second node
    lake = Lake(lake_uri, StorageSettings(endpoint_url=s3_endpoint))
    outputs = lake.read("outputs").to_pylist()
    assert outputs and {o["model_id"] for o in outputs} == {model_uri} and lake.read("errors").num_rows == 0
    # the driver's own copy holds only what its checks read (config, processor): the weights went to node 2
    here = [p for p in cache.rglob("*") if p.is_file()]
    assert here and not [p for p in here if p.suffix == ".safetensors"], here
