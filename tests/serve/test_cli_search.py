"""`vidlake index` and `vidlake serve` from the command line."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from index.lake_rows import seed_lake
from serve.conftest import free_port, http_get
from vidlake.cli import main
from vidlake.index.store import IndexStore
from vidlake.platform.lake import Lake


def test_index_command(tmp_path, capsys, search_clips):
    lake = tmp_path / "lake"
    seed_lake(Lake(str(lake)), search_clips)
    assert main(["index", "--lake", str(lake)]) == 0
    out = capsys.readouterr().out
    assert "texts embedded" in out and "build (no index yet)" in out
    assert IndexStore(str(lake / "_search")).read_meta().rows["segments"] == 15
    assert main(["index", "--lake", str(lake)]) == 0
    assert "unchanged" in capsys.readouterr().out


def test_index_command_without_a_lake(tmp_path, capsys):
    assert main(["index", "--lake", str(tmp_path / "nothing")]) == 2
    assert "no lake at" in capsys.readouterr().err


def test_serve_command_help(capsys):
    assert main(["serve", "--help"]) == 0
    out = capsys.readouterr().out
    assert "--port" in out and "--route-prefix" in out


def _listener_process(port: int) -> str | None:
    """The command name of the process listening on 127.0.0.1/0.0.0.0:``port`` (from /proc), or None."""
    inodes = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if int(fields[1].split(":")[1], 16) == port and fields[3] == "0A":  # LISTEN
            inodes.add(fields[9])
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            if any(os.readlink(fd).removeprefix("socket:[").rstrip("]") in inodes for fd in (proc / "fd").iterdir()):
                return (proc / "comm").read_text().strip()
        except OSError:
            continue
    return None


@pytest.mark.timeout(420)
def test_serve_command_with_haproxy_answers_and_stops_on_ctrl_c(search_lake, tmp_path):
    """`vidlake serve` as a user runs it: its own local Ray, Serve's HAProxy ingress (serve.haproxy=auto,
    the default, takes it on Linux), a search over HTTP, then Ctrl-C stops it and frees the port."""
    settings, ids = search_lake
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    env.update(VIDLAKE_RAY__NUM_CPUS="2")
    env.pop("VIDLAKE_SERVE__HAPROXY", None)
    log = open(tmp_path / "serve.log", "w+")
    proc = subprocess.Popen([str(Path(sys.executable).with_name("vidlake")), "serve", "--lake", settings.lake.uri,
                             "--port", str(port)], stdout=log, stderr=subprocess.STDOUT, env=env)
    try:
        deadline = time.monotonic() + 300
        while True:
            assert proc.poll() is None, (tmp_path / "serve.log").read_text()[-3000:]
            try:
                if http_get(f"http://127.0.0.1:{port}/healthz", timeout=5)[0] == 200:
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline, (tmp_path / "serve.log").read_text()[-3000:]
            time.sleep(1)
        while "via HAProxy" not in (tmp_path / "serve.log").read_text():  # said once deployed
            assert time.monotonic() < deadline and proc.poll() is None, (tmp_path / "serve.log").read_text()[-3000:]
            time.sleep(0.5)
        status, _, body = http_get(f"http://127.0.0.1:{port}/search?q=forklift+drops+a+box&mode=bm25&k=1")
        assert status == 200 and json.loads(body)["hits"][0]["video_id"] == ids["warehouse"]
        assert _listener_process(port) == "haproxy"  # not Serve's Python proxy
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(120)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise
    out = (tmp_path / "serve.log").read_text()
    assert proc.returncode == 0 and "stopping vidlake search" in out, out[-3000:]
    deadline = time.monotonic() + 30
    while _listener_process(port) is not None:  # HAProxy goes with Serve
        assert time.monotonic() < deadline, f"port {port} still held by {_listener_process(port)}"
        time.sleep(1)
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
