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


def _start_serve(lake: str, port: int, log_path: Path) -> subprocess.Popen:
    """`vidlake serve` as a user runs it (its own local Ray), once it answers /healthz."""
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS" and not k.startswith("VIDLAKE_SERVE__")}
    env.update(VIDLAKE_RAY__NUM_CPUS="2")
    log = open(log_path, "w+")
    proc = subprocess.Popen([str(Path(sys.executable).with_name("vidlake")), "serve", "--lake", lake,
                             "--port", str(port)], stdout=log, stderr=subprocess.STDOUT, env=env)
    deadline = time.monotonic() + 300
    while "Ctrl-C stops it" not in log_path.read_text():  # said once deployed
        assert proc.poll() is None and time.monotonic() < deadline, log_path.read_text()[-3000:]
        time.sleep(0.5)
    return proc


def _stop(proc: subprocess.Popen, sig: int, log_path: Path) -> str:
    proc.send_signal(sig)
    try:
        proc.wait(120)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise
    return log_path.read_text()


@pytest.mark.timeout(420)
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_serve_command_answers_then_stops_cleanly_on_ctrl_c_and_sigterm(search_lake, tmp_path, sig):
    """`vidlake serve` with the defaults: Serve's Python proxy on loopback, and no HAProxy (whose stats
    page and metrics would listen on every interface without authentication). Ctrl-C or SIGTERM stops
    it with exit 0 and a short message (no C stack dump, no Ray error lines), and frees the port."""
    settings, ids = search_lake
    port, log_path = free_port(), tmp_path / "serve.log"
    proc = _start_serve(settings.lake.uri, port, log_path)
    try:
        status, headers, body = http_get(f"http://127.0.0.1:{port}/search?q=forklift+drops+a+box&mode=bm25&k=1")
        assert status == 200 and json.loads(body)["hits"][0]["video_id"] == ids["warehouse"]
        assert headers["x-vidlake-index"] == "ready"
        assert "via Serve's Python proxy" in log_path.read_text()
        assert _listener_process(port) != "haproxy"
        assert not [p for p in Path("/proc").glob("[0-9]*") if _comm(p) == "haproxy" and _descends(p, proc.pid)]
    finally:
        out = _stop(proc, sig, log_path)
    assert proc.returncode == 0 and "stopping vidlake search" in out, out[-3000:]
    tail = out.split("stopping vidlake search", 1)[1]
    assert "SIGTERM received" not in out and "Traceback" not in out and "(raylet)" not in tail, out[-3000:]
    deadline = time.monotonic() + 30
    while _listener_process(port) is not None:
        assert time.monotonic() < deadline, f"port {port} still held by {_listener_process(port)}"
        time.sleep(1)
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=2).close()


def test_serve_on_a_taken_port_is_one_line_at_once(search_lake, capsys):
    """Another process holds the port: one line saying so and what to do, before any Ray starts."""
    settings, _ = search_lake
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
        out = subprocess.run([str(Path(sys.executable).with_name("vidlake")), "serve", "--lake", settings.lake.uri,
                              "--port", str(port)], capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 2 and out.stdout == "", out.stdout
    assert out.stderr.strip() == (f"error: cannot listen on 127.0.0.1:{port} (Address already in use); another "
                                  "process holds the port: stop it or pick another with --port")


def _comm(proc: Path) -> str:
    try:
        return (proc / "comm").read_text().strip()
    except OSError:
        return ""


def _descends(proc: Path, ancestor: int) -> bool:
    pid = int(proc.name)
    while pid > 1:
        if pid == ancestor:
            return True
        try:
            pid = int((Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            return False
    return False
