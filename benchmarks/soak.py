"""Soak test: caption jobs, ingests of a changing folder, index updates and search load on one lake at once,
with processes killed (SIGKILL) now and then; then the lake is compared with a clean run of the final inputs.

    .venv/bin/python benchmarks/soak.py [--minutes 8] [--workdir /tmp/vidlake-soak] [--seed 0]

Not part of the test suite and not run in CI. For ``--minutes``, as subprocesses of this script (a kill is a real
``kill -9`` of a driver), all on one lake and one shared Ray (``ray start --head``, loopback node address,
``--ray-cpus`` logical CPUs so that two caption jobs, an ingest and the search service can hold their reservations
together on a small machine; the cores themselves are shared by the OS):

* a mutator changes the source folder every few seconds: adds a new clip (some in a subfolder), deletes one,
  replaces one in place with other content (same or other frame size), copies one under a second name (one content,
  two paths), renames one. Each change lands atomically (written beside the folder, then renamed in);
* loops of ``vidlake ingest``, ``vidlake run`` (``--caption-loops`` of them: the tiny offline Molmo 2, tiny windows,
  a commit after every (video, task)) and ``vidlake index``, each started again when it ends;
* ``vidlake serve`` on 127.0.0.1, and a client sending BM25 searches and health checks;
* a killer that every ``--kill-every`` seconds SIGKILLs a random running ingest/run/index driver, or (a
  ``--worker-kill-share`` of the time) a Ray Data worker of a running job.

Then everything stops (running drivers are SIGKILLed too), the soak lake is settled (one ingest, run and index, no
kills), and a clean lake is built from the final folder with the same job (ingest, run, index). Checked:

1. videos: every video of the clean lake is in the soak lake, with the same paths among the final folder's files;
   no final path is claimed by two videos; ``files`` names the same content for every final path
2. windows, outputs, captions (and answers/points/tracks/counts when they have rows): for the clean lake's videos the
   same keys (``schemas.KEYS``): none missing (lost), none extra, and no key twice anywhere in the soak lake (doubled)
3. texts: each output's status and raw text, each caption's text, equal to the clean run's (greedy decoding on CPU is
   deterministic, so a difference means other frames or another prompt reached the model)
4. kept: every output and window key seen in the soak lake while it ran (it is read every ``--snapshot-every`` s) is
   still there: old contents (changed or deleted files) keep their rows
5. errors, claims, runs: no key twice; no run reads ``running`` once every process is gone and its heartbeat is stale
6. index: after the final ``vidlake index`` its caption segments are exactly the soak lake's captions (by doc id,
   none twice), its videos are the lake's, and it is not stale
7. search: no 5xx other than 503 and no failed connection once the service had answered
8. commands: the settle and reference commands exit 0; none ran past its timeout; no unexpected exception
   (``error: unexpected ...``) in a command that was not killed

Exit status 0 when every check holds, 1 otherwise, 2 when the hard deadline (``--minutes`` + 30) cut the run short.
The report is added as the newest section of ``--out`` (benchmarks/results/soak.md); the event log (events.jsonl),
every command's output (logs/) and both lakes stay in ``--workdir``.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import Counter
from pathlib import Path

import psutil

# benchmarks/ is on sys.path when a script runs
from common import RESULTS, machine_header, percentiles, write_result

from vidlake.platform.lake import KEYS, Lake  # noqa: E402

BIN = Path(sys.executable).parent
QUERIES = ["car", "red car", "person walks", "a dog on the street", "bike", "the window", "nothing at all"]
TIMEOUT_S = {"ingest": 300, "run": 600, "index": 300}  # a command still running past this is killed: a timeout
INTRO = ("`benchmarks/soak.py` (not in CI): caption jobs, ingests of a changing folder, index updates and search "
         "load at once on one lake, with drivers and Ray Data workers killed (SIGKILL) now and then; then the lake is "
         "settled and compared with a clean run of the final folder. Newest run first; the script's docstring says "
         "what each check means.")
OUTPUT_TABLES = ("windows", "outputs", "captions", "answers", "points", "tracks", "counts")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def make_clip(path: Path, seed: int, seconds: int, size: tuple[int, int], fps: int = 8) -> None:
    """A short H.264 clip whose content is set by ``seed``: coloured 8 px blocks scrolling sideways."""
    import av
    import numpy as np

    w, h = size
    blocks = np.random.default_rng(seed).integers(0, 256, (h // 8 + 1, w // 8 + 1, 3), dtype=np.uint8)
    base = np.kron(blocks, np.ones((8, 8, 1), np.uint8))[:h, :w]
    with av.open(str(path), "w", format="mp4") as out:
        stream = out.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        for i in range(seconds * fps):
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(np.roll(base, 2 * i, axis=1)), format="rgb24")
            frame.pts = i
            out.mux(stream.encode(frame))
        out.mux(stream.encode())


class Folder:
    """The source folder the soak keeps changing; every clip written has content no other clip had."""

    def __init__(self, root: Path, scratch: Path, rng: random.Random, min_files: int, max_files: int):
        self.root, self.scratch, self.rng = root, scratch, rng
        self.min_files, self.max_files = min_files, max_files
        self.seed = self.names = 0

    def files(self) -> list[Path]:
        return sorted(self.root.rglob("*.mp4"))

    def _new_path(self) -> Path:
        self.names += 1
        return self.root / ("sub" if self.rng.random() < 0.3 else "") / f"c{self.names:03d}.mp4"

    def _land(self, tmp: Path, target: Path) -> None:
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(tmp, target)

    def write(self, target: Path, size: tuple[int, int] = (64, 48)) -> str:
        self.seed += 1
        seconds = self.rng.choice((2, 3, 4))
        tmp = self.scratch / "clip.tmp"
        make_clip(tmp, self.seed, seconds, size)
        self._land(tmp, target)
        return f"{self.rel(target)} (content {self.seed}, {seconds} s, {size[0]}x{size[1]})"

    def rel(self, path: Path) -> str:
        return str(path.relative_to(self.root))

    def mutate(self) -> tuple[str, str]:
        """One change: (operation, what changed)."""
        files = self.files()
        ops = ["replace", "rename"] + (["delete"] if len(files) > self.min_files else [])
        ops += ["add", "add", "copy"] if len(files) < self.max_files else []
        op = self.rng.choice(ops)
        if op == "add":
            return op, self.write(self._new_path())
        victim = self.rng.choice(files)
        if op == "delete":
            victim.unlink()
            return op, self.rel(victim)
        if op == "replace":
            return op, self.write(victim, self.rng.choice([(64, 48), (64, 48), (96, 64)]))
        target = self._new_path()
        if op == "copy":
            shutil.copy2(victim, self.scratch / "copy.tmp")
            self._land(self.scratch / "copy.tmp", target)
        else:
            self._land(victim, target)
        return op, f"{self.rel(victim)} -> {self.rel(target)}"


def session(sid: int | None) -> list[psutil.Process]:
    """Every process of the session ``sid`` (a command's, or Ray's daemons and workers)."""
    procs = []
    for p in psutil.process_iter():
        try:
            if sid and os.getsid(p.pid) == sid:
                procs.append(p)
        except (OSError, psutil.Error):  # gone meanwhile
            pass
    return procs


def kill_all(procs: list[psutil.Process]) -> None:
    for p in procs:
        try:
            p.kill()
        except psutil.Error:
            pass
    psutil.wait_procs(procs, timeout=30)


def last_error(log: Path) -> str | None:
    lines = [ln for ln in log.read_text(errors="replace").splitlines() if ln.startswith("error:")]
    return lines[-1][:300] if lines else None


class Soak:
    """The processes of one soak and what they did: events, commands, kills, HTTP answers, keys seen."""

    def __init__(self, args):
        self.args, self.work = args, args.workdir
        self.lock, self.stop = threading.Lock(), threading.Event()
        self.live: dict[int, tuple[str, subprocess.Popen]] = {}  # running ingest/run/index drivers by pid
        self.killed: set[int] = set()  # by the killer
        self.stopped: set[int] = set()  # at the end of the soak
        self.last_death = 0.0  # wall-clock time of the last SIGKILL of a driver
        self.events: list[dict] = []
        self.commands: list[dict] = []
        self.numbers = itertools.count(1)
        self.http: list[tuple[str, int | str, float]] = []  # endpoint, status (or the error's name), seconds
        self.seen: dict[str, set] = {"outputs": set(), "windows": set()}
        self.snapshot_errors = 0
        self.began = time.monotonic()
        self.ray_sid: int | None = None
        self.serve: subprocess.Popen | None = None
        self.event_file = open(self.work / "events.jsonl", "w")
        self.env = {**os.environ, "RAY_AUTH_MODE": "token", "RAY_USAGE_STATS_ENABLED": "0", "PYTHONUNBUFFERED": "1",
                    "VIDLAKE_SERVE__REPLICAS": "1", "VIDLAKE_SERVE__REFRESH_S": "5",
                    "VIDLAKE_SEARCH__EMBED_THREADS": "1"}

    def log(self, what: str, /, **detail) -> None:
        event = {"t": round(time.monotonic() - self.began, 1), "event": what, **detail}
        with self.lock:
            self.events.append(event)
            self.event_file.write(json.dumps(event) + "\n")
            self.event_file.flush()
        print(f"[{event['t']:7.1f}] {what}: " + ", ".join(f"{k}={v}" for k, v in detail.items()), flush=True)

    # ------------------------------------------------------------------------------------------ Ray

    def start_ray(self) -> None:
        temp = self.work / "ray"
        cmd = [str(BIN / "ray"), "start", "--head", f"--port={free_port()}", f"--num-cpus={self.args.ray_cpus}",
               f"--temp-dir={temp}", "--node-ip-address=127.0.0.1", "--include-dashboard=false",
               "--disable-usage-stats", f"--ray-client-server-port={free_port()}", f"--dashboard-port={free_port()}",
               f"--dashboard-agent-listen-port={free_port()}"]
        with open(self.work / "logs" / "ray-start.log", "w") as out:
            proc = subprocess.Popen(cmd, env=self.env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
            self.ray_sid = proc.pid  # its daemons keep this session id: that is how they are found and stopped
            if proc.wait(timeout=180) != 0:
                raise RuntimeError(f"ray start failed, see {out.name}")
        self.env["RAY_ADDRESS"] = (temp / "ray_current_cluster").read_text().strip()
        self.log("ray", address=self.env["RAY_ADDRESS"], cpus=self.args.ray_cpus)

    def ray_workers(self) -> list[tuple[psutil.Process, str]]:
        """Ray Data task and actor workers of the running jobs (not Serve's, not Ray's own actors)."""
        out = []
        for p in session(self.ray_sid):
            try:
                title = (p.cmdline() or [""])[0]
            except psutil.Error:
                continue
            if title.startswith("ray::") and "Map" in title and "Serve" not in title:
                out.append((p, title))
        return out

    def stop_ray(self) -> None:
        procs = session(self.ray_sid)
        kill_all(procs)
        if procs:
            self.log("ray-stopped", processes=len(procs))

    # ------------------------------------------------------------------------------------- commands

    def command(self, kind: str, args: list[str], phase: str = "soak") -> dict:
        """Run one vidlake command to its end (or its timeout) and record how it ended."""
        with self.lock:
            n = next(self.numbers)
        log = self.work / "logs" / f"{n:04d}-{phase}-{kind}.log"
        with open(log, "w") as out:
            proc = subprocess.Popen([str(BIN / "vidlake"), *args], env=self.env, cwd=self.work, stdout=out,
                                    stderr=subprocess.STDOUT, start_new_session=True)
        with self.lock:
            self.live[proc.pid] = (kind, proc)
        started, outcome = time.monotonic(), None
        try:
            rc = proc.wait(timeout=TIMEOUT_S[kind.split("-")[0]])
        except subprocess.TimeoutExpired:
            proc.kill()
            rc, outcome = proc.wait(timeout=60), "timeout"
            self.last_death = time.time()
        with self.lock:
            self.live.pop(proc.pid, None)
        if outcome is None:
            outcome = ("killed" if proc.pid in self.killed else "stopped" if proc.pid in self.stopped
                       else "ok" if rc == 0 else f"exit {rc}")
        record = {"n": n, "phase": phase, "kind": kind, "pid": proc.pid, "rc": rc, "outcome": outcome,
                  "seconds": round(time.monotonic() - started, 1), "error": last_error(log),
                  "leftovers": self.sweep(proc.pid)}
        with self.lock:
            self.commands.append(record)
        self.log("command", **{k: v for k, v in record.items() if v is not None})
        return record

    def sweep(self, sid: int) -> int:
        """Kill what a finished command left behind in its session (after 3 s to exit by itself); how many."""
        deadline = time.monotonic() + 3
        while (procs := session(sid)) and time.monotonic() < deadline:
            time.sleep(0.5)
        kill_all(procs)
        return len(procs)

    def loop(self, kind: str, args: list[str], pause: tuple[float, float], seed: int) -> None:
        rng = random.Random(seed)
        while not self.stop.is_set():
            self.command(kind, args)
            self.stop.wait(rng.uniform(*pause))

    # --------------------------------------------------------------------------------- the disorder

    def killer(self, seed: int) -> None:
        rng = random.Random(seed)
        while not self.stop.wait(rng.uniform(*self.args.kill_every)):
            workers = self.ray_workers() if rng.random() < self.args.worker_kill_share else []
            if workers:
                proc, title = rng.choice(workers)
                try:
                    proc.kill()
                    self.log("kill", target="ray-worker", pid=proc.pid, title=title[:80])
                except psutil.Error:
                    pass
                continue
            with self.lock:
                drivers = [(pid, kind, p) for pid, (kind, p) in self.live.items() if p.poll() is None]
                if drivers:
                    pid, kind, proc = rng.choice(drivers)
                    self.killed.add(pid)
                    self.last_death = time.time()
                    proc.kill()  # Popen.kill: SIGKILL, nothing when it has just ended
            if drivers:
                self.log("kill", target=kind.split("-")[0], pid=pid)

    def mutator(self, folder: Folder, seed: int) -> None:
        rng = random.Random(seed)
        while not self.stop.wait(rng.uniform(*self.args.mutate_every)):
            op, what = folder.mutate()
            self.log("mutate", op=op, what=what)

    def search_load(self, base: str, seed: int) -> None:
        rng = random.Random(seed)
        while not self.stop.is_set():
            if rng.random() < 0.3:
                path = "/healthz"
            else:
                path = "/search?" + urllib.parse.urlencode({"q": rng.choice(QUERIES), "mode": "bm25", "k": 5})
            t0 = time.perf_counter()
            try:
                with urllib.request.urlopen(base + path, timeout=20) as answer:
                    answer.read()
                    status: int | str = answer.status
            except urllib.error.HTTPError as exc:
                status = exc.code
            except OSError as exc:  # refused, reset, timed out
                status = type(getattr(exc, "reason", exc)).__name__
            self.http.append((path.split("?")[0], status, time.perf_counter() - t0))
            self.stop.wait(self.args.search_pause)

    def snapshots(self, lake: Lake) -> None:
        """Every output and window key the soak lake shows while it runs (all of them must be there at the end)."""
        while not self.stop.wait(self.args.snapshot_every):
            try:
                out = lake.read("outputs", columns=list(KEYS["outputs"]))
                self.seen["outputs"].update(zip(*(out[c].to_pylist() for c in KEYS["outputs"])))
                self.seen["windows"].update(lake.read("windows", columns=["window_id"])["window_id"].to_pylist())
            except Exception as exc:  # noqa: BLE001 - a read that fails is counted, the next one tries again
                self.snapshot_errors += 1
                self.log("snapshot-error", error=f"{type(exc).__name__}: {exc}"[:200])

    def start_serve(self, lake: Path, port: int) -> str:
        out = open(self.work / "logs" / "serve.log", "w")
        self.serve = subprocess.Popen([str(BIN / "vidlake"), "serve", "--lake", str(lake), "--host", "127.0.0.1",
                                       "--port", str(port)], env=self.env, cwd=self.work, stdout=out,
                                      stderr=subprocess.STDOUT, start_new_session=True)
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and self.serve.poll() is None:
            try:
                urllib.request.urlopen(base + "/healthz", timeout=5).close()
                break
            except urllib.error.HTTPError:  # it answers (503: no index yet)
                break
            except OSError:
                time.sleep(2)
        else:
            raise RuntimeError(f"vidlake serve did not answer on {base}, see {out.name}")
        self.log("serve", url=base)
        return base

    def stop_serve(self) -> None:
        if self.serve is None or self.serve.poll() is not None:
            return
        self.serve.send_signal(signal.SIGTERM)
        try:
            self.serve.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.serve.kill()
            self.serve.wait(timeout=30)
        self.log("serve-stopped", rc=self.serve.returncode, leftovers=self.sweep(self.serve.pid))

    def halt(self, threads: list[threading.Thread]) -> None:
        """End the soak: no new commands, SIGKILL the running ones, wait for every thread."""
        self.stop.set()
        with self.lock:
            for pid, (_, proc) in self.live.items():
                if proc.poll() is None:
                    self.stopped.add(pid)
                    self.last_death = time.time()
                    proc.kill()
        for t in threads:
            t.join(timeout=120)
        if threads:
            self.log("halted", threads_alive=sum(t.is_alive() for t in threads))

    def abort(self) -> None:
        """The hard deadline: kill everything this script started and exit 2."""
        self.log("deadline", message="hard deadline reached, killing everything")
        self.stop.set()
        with self.lock:
            for _, proc in self.live.values():
                proc.kill()
        if self.serve is not None:
            self.serve.kill()
        self.stop_ray()
        os._exit(2)


# ------------------------------------------------------------------------------------------- checking


class Checks:
    """Named checks, each holding or not, with the numbers behind it."""

    def __init__(self):
        self.rows: list[tuple[str, bool, str]] = []

    def add(self, name: str, ok: bool, numbers: str) -> None:
        self.rows.append((name, ok, numbers))
        print(f"  {'ok  ' if ok else 'FAIL'} {name}: {numbers}", flush=True)

    @property
    def ok(self) -> bool:
        return all(ok for _, ok, _ in self.rows)


def keyed(lake: Lake, table: str, extra: tuple[str, ...] = (), full: bool = False) -> dict[tuple, list[dict]]:
    """The table's rows (key columns, video_id and ``extra``, or every column) grouped by key (``schemas.KEYS``)."""
    columns = None if full else list(dict.fromkeys([*KEYS[table], "video_id", *extra]))
    out: dict[tuple, list[dict]] = {}
    for row in lake.read(table, columns=columns).to_pylist():
        out.setdefault(tuple(row[k] for k in KEYS[table]), []).append(row)
    return out


def doubled(rows: dict[tuple, list]) -> int:
    return sum(len(v) - 1 for v in rows.values())


def check_videos(checks: Checks, soak: Lake, clean: Lake, final: set[str]) -> set[str]:
    """Videos and paths; returns the clean lake's video ids."""
    s, c = keyed(soak, "videos", ("uris",)), keyed(clean, "videos", ("uris",))
    s_uris = {k[0]: set(rows[0]["uris"]) for k, rows in s.items()}
    c_uris = {k[0]: set(rows[0]["uris"]) for k, rows in c.items()}
    missing = [v for v in c_uris if v not in s_uris]
    other_paths = [v for v in c_uris if v in s_uris and s_uris[v] & final != c_uris[v]]
    claims = Counter(u for uris in s_uris.values() for u in uris & final)
    twice = [u for u, n in claims.items() if n > 1]
    unread = final - set().union(*c_uris.values()) if c_uris else final
    checks.add("videos: clean lake's videos and their final paths in the soak lake",
               not (missing or other_paths or twice or doubled(s) or unread),
               f"{len(final)} final files, {len(c_uris)} videos in the clean lake ({len(unread)} files not in it); "
               f"soak lake {len(s_uris)} videos ({len(set(s_uris) - set(c_uris))} old contents); "
               f"missing {len(missing)}, other paths {len(other_paths)}, final paths under two videos {len(twice)}, "
               f"video_id twice {doubled(s)}")
    sf, cf = keyed(soak, "files"), keyed(clean, "files")
    content = lambda rows, uri: [r["video_id"] for r in rows.get((uri,), [])]  # noqa: E731
    differ = [u for u in final if content(sf, u) != content(cf, u)]
    checks.add("files: each final path names the same content", not (differ or doubled(sf)),
               f"{len(final)} paths, {len(differ)} differ, uri twice {doubled(sf)}; soak lake {len(sf)} rows "
               f"(deleted or renamed paths keep theirs), clean {len(cf)}")
    return set(c_uris)


def check_outputs(checks: Checks, soak: Lake, clean: Lake, ids: set[str], seen: dict[str, set]) -> None:
    for table in OUTPUT_TABLES:
        text = {"outputs": ("parse_status", "raw_text"), "captions": ("text",)}.get(table, ())
        s, c = keyed(soak, table, text), keyed(clean, table, text)
        if not s and not c:
            continue
        mine = {k: rows for k, rows in s.items() if rows[0]["video_id"] in ids}
        lost, extra = set(c) - set(mine), set(mine) - set(c)
        checks.add(f"{table}: nothing lost, nothing doubled", not (lost or extra or doubled(s) or doubled(c)),
                   f"clean {len(c)} keys; soak {len(mine)} for those videos and {len(s) - len(mine)} of old contents; "
                   f"lost {len(lost)}, "
                   f"extra {len(extra)}, key twice in the soak lake {doubled(s)} (clean {doubled(c)})")
        if text:
            differ = [k for k in set(c) & set(mine) if [mine[k][0][f] for f in text] != [c[k][0][f] for f in text]]
            failed = sum(rows[0].get("parse_status") == "error" for rows in mine.values())
            checks.add(f"{table}: same {' and '.join(text)} as the clean run", not differ,
                       f"{len(set(c) & set(mine))} compared, {len(differ)} differ"
                       + (f" ({failed} soak outputs with status error)" if table == "outputs" else "")
                       + (f"; first: {differ[0]}" if differ else ""))
        if table in seen:
            gone = {k if table == "outputs" else (k,) for k in seen[table]} - set(s)
            checks.add(f"{table}: every key seen during the soak is still there", not gone,
                       f"{len(seen[table])} keys seen in snapshots, {len(gone)} gone")


def check_records(checks: Checks, soak: Lake, kills: Counter) -> None:
    from vidlake.platform.lake.runs import run_state

    for table in ("errors", "claims"):
        rows = keyed(soak, table, full=True)
        same = sum(len(v) - len({json.dumps(r, sort_keys=True, default=str) for r in v}) for v in rows.values())
        checks.add(f"{table}: no key twice", not doubled(rows),
                   f"{sum(map(len, rows.values()))} rows, key twice {doubled(rows)}"
                   + (f" ({same} of them equal to another row in every column)" if doubled(rows) else ""))
    runs = keyed(soak, "runs", full=True)
    states = Counter((rows[0]["job"], run_state(rows[0])) for rows in runs.values())
    running = sum(n for (_, state), n in states.items() if state == "running")
    checks.add("runs: none reads running once every process is gone", not (running or doubled(runs)),
               ", ".join(f"{job} {state} {n}" for (job, state), n in sorted(states.items()))
               + f"; drivers SIGKILLed (by the killer, at the stop): {dict(kills)}; run_id twice {doubled(runs)}")


def check_index(checks: Checks, lake: Lake, path: Path) -> None:
    from vidlake.index import documents
    from vidlake.index.store import IndexStore, lake_versions, staleness

    store = IndexStore(str(path / "_search"))
    meta = store.read_meta()
    if meta is None:
        checks.add("index: segments are the lake's captions", False, "no index")
        return
    db = store.connect()
    seg = db.open_table(meta.tables["segments"]).to_arrow().select(["doc_id", "source"]).to_pylist()
    have = Counter(r["doc_id"] for r in seg if r["source"] == "captions")
    want = set(documents.caption_docs(lake.read("captions"))["doc_id"].to_pylist())
    videos = Counter(db.open_table(meta.tables["videos"]).to_arrow()["video_id"].to_pylist())
    lake_videos = set(lake.read("videos", columns=["video_id"])["video_id"].to_pylist())
    stale = staleness(meta, lake_versions(lake), meta.embedding_model)
    twice = sum(n - 1 for n in have.values()) + sum(n - 1 for n in videos.values())
    checks.add("index: segments are the lake's captions, videos the lake's, not stale",
               not (set(have) ^ want or twice or set(videos) ^ lake_videos or stale),
               f"{len(want)} captions with text, {sum(have.values())} caption segments; "
               f"missing {len(want - set(have))}, extra {len(set(have) - want)}, doc id twice {twice}; "
               f"index videos {len(videos)} / lake {len(lake_videos)}; stale: {stale or 'no'}")


def check_search(checks: Checks, http: list) -> dict[str, list[float]]:
    statuses = Counter(status for _, status, _ in http)
    bad = {s: n for s, n in statuses.items() if not isinstance(s, int) or (s >= 500 and s != 503)}
    checks.add("search: no 5xx but 503, no failed connection", not bad and bool(http),
               f"{len(http)} requests: " + ", ".join(f"{s} x{n}" for s, n in sorted(statuses.items(), key=str)))
    latency: dict[str, list[float]] = {}
    for endpoint, status, seconds in http:
        if status == 200:
            latency.setdefault(endpoint, []).append(seconds * 1000)
    return latency


def check_commands(checks: Checks, commands: list[dict]) -> None:
    final = [c for c in commands if c["phase"] != "soak"]
    checks.add("commands: settle and reference runs exit 0", all(c["rc"] == 0 for c in final) and len(final) == 6,
               ", ".join(f"{c['phase']} {c['kind']} {c['outcome']} ({c['seconds']} s)" for c in final))
    timeouts = [c for c in commands if c["outcome"] == "timeout"]
    crashes = [c for c in commands
               if c["outcome"] not in ("killed", "stopped") and "error: unexpected" in (c["error"] or "")]
    checks.add("commands: no timeout, no unexpected exception", not (timeouts or crashes),
               f"{len(commands)} commands, {len(timeouts)} past their timeout, {len(crashes)} unexpected exceptions"
               + "".join(f"; #{c['n']} {c['kind']}: {c['error']}" for c in crashes[:3]))


# ---------------------------------------------------------------------------------------------- main


def job_spec(path: Path, source: Path, lake: Path, tiny_dir: Path, max_new_tokens: int) -> Path:
    path.write_text(json.dumps({  # JSON is YAML
        "name": "soak", "sources": [str(source)], "lake": str(lake), "commit_every": 1,
        "tasks": [{"task": "caption", "max_new_tokens": max_new_tokens}],
        "model": {"name": "tiny", "tiny_dir": str(tiny_dir), "local_files_only": True},
        "sampling": {"fps": 2, "max_frames": 4, "overlap_s": 0.5, "size": 64},
        "resources": {"batch_size": 1},
    }, indent=1))
    return path


def settle(soak: Soak, phase: str, source: Path, lake: Path, spec: Path) -> None:
    """One ingest, run and index on ``lake``, one after the other, nothing killed."""
    for kind, args in (("ingest", ["ingest", str(source), "--lake", str(lake)]), ("run", ["run", str(spec)]),
                       ("index", ["index", "--lake", str(lake)])):
        soak.command(kind, args, phase=phase)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--minutes", type=float, default=8.0, help="how long the disorder lasts")
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/vidlake-soak"),
                    help="source folder, lakes, Ray's temp folder, logs (emptied first)")
    ap.add_argument("--seed", type=int, default=0, help="seeds the changes, the kills and the queries")
    ap.add_argument("--clips", type=int, default=6, help="clips in the folder at the start")
    ap.add_argument("--max-files", type=int, default=10, help="the mutator adds or copies only below this many files")
    ap.add_argument("--caption-loops", type=int, default=2, help="`vidlake run` loops at once")
    ap.add_argument("--kill-every", type=float, nargs=2, default=(20.0, 40.0), metavar=("MIN", "MAX"),
                    help="seconds between two kills (uniform)")
    ap.add_argument("--worker-kill-share", type=float, default=0.25,
                    help="share of kills that hit a Ray Data worker instead of a driver")
    ap.add_argument("--mutate-every", type=float, nargs=2, default=(4.0, 10.0), metavar=("MIN", "MAX"),
                    help="seconds between two changes of the folder (uniform)")
    ap.add_argument("--search-pause", type=float, default=0.25, help="seconds between two search requests")
    ap.add_argument("--snapshot-every", type=float, default=20.0, help="seconds between two reads of the soak lake")
    ap.add_argument("--ray-cpus", type=int, default=6, help="logical CPUs of the shared Ray")
    ap.add_argument("--max-new-tokens", type=int, default=12, help="tokens per caption")
    ap.add_argument("--tiny-dir", type=Path, default=Path("~/.cache/vidlake/models/tiny-molmo2-seed0").expanduser(),
                    help="the tiny Molmo 2 checkpoint (built there once)")
    ap.add_argument("--out", type=Path, default=RESULTS / "soak.md")
    args = ap.parse_args()

    from vidlake.models.tiny import ensure_tiny

    work = args.workdir
    if work.exists():
        if any(work.iterdir()) and not (work / ".vidlake-soak").exists():
            sys.exit(f"{work} is not empty and not a soak workdir: pick another --workdir")
        shutil.rmtree(work)
    for sub in ("src", "scratch", "logs"):
        (work / sub).mkdir(parents=True)
    (work / ".vidlake-soak").touch()
    ensure_tiny(args.tiny_dir)
    soak = Soak(args)
    watchdog = threading.Timer(args.minutes * 60 + 30 * 60, soak.abort)
    watchdog.daemon = True
    watchdog.start()
    source, lake_dir, clean_dir = work / "src", work / "lake", work / "clean"
    folder = Folder(source, work / "scratch", random.Random(args.seed), min_files=3, max_files=args.max_files)
    for _ in range(args.clips):
        folder.write(folder._new_path())
    spec = job_spec(work / "soak.yaml", source, lake_dir, args.tiny_dir, args.max_new_tokens)
    clean_spec = job_spec(work / "clean.yaml", source, clean_dir, args.tiny_dir, args.max_new_tokens)
    seeds = iter(range(args.seed * 100 + 1, args.seed * 100 + 100))
    phases: dict[str, float] = {}
    try:
        soak.start_ray()
        base = soak.start_serve(lake_dir, free_port())
        targets = [(soak.mutator, (folder, next(seeds))), (soak.killer, (next(seeds),)),
                   (soak.search_load, (base, next(seeds))), (soak.snapshots, (Lake(str(lake_dir)),)),
                   (soak.loop, ("ingest", ["ingest", str(source), "--lake", str(lake_dir)], (2, 6), next(seeds))),
                   (soak.loop, ("index", ["index", "--lake", str(lake_dir)], (3, 8), next(seeds)))]
        targets += [(soak.loop, (f"run-{i + 1}", ["run", str(spec)], (1, 4), next(seeds)))
                    for i in range(args.caption_loops)]
        threads = [threading.Thread(target=f, args=a, daemon=True) for f, a in targets]
        t0 = time.monotonic()
        for t in threads:
            t.start()
        time.sleep(args.minutes * 60)
        soak.halt(threads)
        soak.stop_serve()
        phases["soak"] = time.monotonic() - t0
        final = {str(p) for p in folder.files()}
        t0 = time.monotonic()
        settle(soak, "settle", source, lake_dir, spec)
        phases["settle"] = time.monotonic() - t0
        t0 = time.monotonic()
        settle(soak, "reference", source, clean_dir, clean_spec)
        phases["reference"] = time.monotonic() - t0
    finally:
        soak.halt([])  # after an error: nothing may keep running
        soak.stop_serve()
        soak.stop_ray()
    wait = soak.last_death + 125 - time.time()  # a run killed last reads abandoned once its heartbeat is stale
    if wait > 0:
        print(f"waiting {wait:.0f} s for the last killed run's heartbeat to go stale", flush=True)
        time.sleep(wait)
    print("checks:", flush=True)
    checks = Checks()
    soak_lake, clean_lake = Lake(str(lake_dir)), Lake(str(clean_dir))
    ids = check_videos(checks, soak_lake, clean_lake, final)
    check_outputs(checks, soak_lake, clean_lake, ids, soak.seen)
    kills = Counter(c["kind"].split("-")[0] for c in soak.commands if c["outcome"] in ("killed", "stopped", "timeout"))
    check_records(checks, soak_lake, kills)
    check_index(checks, soak_lake, lake_dir)
    latency = check_search(checks, soak.http)
    check_commands(checks, soak.commands)
    watchdog.cancel()
    text = report(args, soak, checks, latency, phases, final)
    if not args.out.exists():
        text = f"# Soak test\n\n{INTRO}\n\n{text}"
    write_result(args.out, text, section=True)
    sys.exit(0 if checks.ok else 1)


def report(args, soak: Soak, checks: Checks, latency: dict[str, list[float]], phases: dict[str, float],
           final: set[str]) -> str:
    mutations = Counter(e["op"] for e in soak.events if e["event"] == "mutate")
    kills = Counter(e["target"] for e in soak.events if e["event"] == "kill")
    outcomes = Counter((c["kind"].split("-")[0], c["outcome"]) for c in soak.commands if c["phase"] == "soak")
    errors = Counter((c["kind"].split("-")[0], c["error"]) for c in soak.commands
                     if c["phase"] == "soak" and c["error"] and c["outcome"] not in ("killed", "stopped"))
    cmd = " ".join(["benchmarks/soak.py", *sys.argv[1:]])
    lines = [
        f"## {args.minutes:g} minutes, seed {args.seed}: {'PASS' if checks.ok else 'FAIL'} "
        f"({sum(ok for _, ok, _ in checks.rows)} of {len(checks.rows)} checks hold)", "",
        machine_header(__file__), "",
        f"Command: `.venv/bin/python {cmd}`. {args.clips} clips at the start (2-4 s, 8 fps, 64x48 or 96x64, H.264), "
        f"a change every {args.mutate_every[0]:g}-{args.mutate_every[1]:g} s (at most {args.max_files} files), "
        f"{args.caption_loops} caption loops, a kill every {args.kill_every[0]:g}-{args.kill_every[1]:g} s "
        f"({args.worker_kill_share:.0%} of them a Ray Data worker), one shared Ray with {args.ray_cpus} logical CPUs, "
        f"tiny Molmo 2 ({args.max_new_tokens} tokens, 2 fps, 4-frame windows, 64 px), a search every "
        f"{args.search_pause:g} s. Wall time: " + ", ".join(f"{k} {v:.0f} s" for k, v in phases.items()) + ".", "",
        "| what happened | count |", "|---|---:|",
        *[f"| folder change: {op} | {n} |" for op, n in sorted(mutations.items())],
        *[f"| kill -9: {target} | {n} |" for target, n in sorted(kills.items())],
        *[f"| {kind} command: {outcome} | {n} |" for (kind, outcome), n in sorted(outcomes.items())],
        f"| processes a command left behind (killed by the script) | {sum(c['leftovers'] for c in soak.commands)} |",
        f"| files in the final folder | {len(final)} |",
        f"| reads of the soak lake during the soak that failed | {soak.snapshot_errors} |", "",
        "| check | holds | numbers |", "|---|---|---|",
        *[f"| {name} | {'yes' if ok else '**no**'} | {numbers} |" for name, ok, numbers in checks.rows], "",
        "Search latency of answered requests (ms): " + "; ".join(
            f"`{ep}` {len(v)} requests, p50 {p[0]:.0f}, p90 {p[1]:.0f}, p99 {p[2]:.0f}"
            for ep, v in sorted(latency.items()) for p in [percentiles(v, 50, 90, 99)]) + ".",
    ]
    if errors:
        lines += ["", "Error lines of commands that ended on their own with a non-zero exit (not killed):", ""]
        lines += [f"- {kind} x{n}: `{err}`" for (kind, err), n in errors.most_common(10)]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
