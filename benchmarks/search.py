"""Search benchmark: synthetic lake -> index build -> HTTP load through Ray Serve vs LanceDB directly.

    .venv/bin/python benchmarks/search.py                       # 1,000,000 segments, 20,000 videos
    .venv/bin/python benchmarks/search.py --segments 200000 --videos 4000   # scaled down
    .venv/bin/python benchmarks/search.py --build-steps 4 --lock /tmp/vidlake-bench.lock --build-only  # grow + index
    flock /tmp/vidlake-bench.lock .venv/bin/python benchmarks/search.py --reuse   # measure the built index again

Generates a lake of caption segments with a realistic vocabulary (plus track/point samples for
evidence), builds the index with ``vidlake index`` code (seconds, size on disk), then sends the same
``--queries`` queries per mode (bm25, semantic, hybrid) from ``--clients`` concurrent HTTP clients to
the Ray Serve app, and from as many threads straight to LanceDB (FTS / ANN / both + RRF; once through
LanceDB's query builder, once through the Lance dataset under it, as vidlake queries), each returning
the columns a hit is made of, and prints p50, p99, QPS, errors and the overhead ratios as a Markdown
table, added as the newest section of ``--out`` (benchmarks/results/search.md). The HTTP clients are
aiohttp sessions, coroutines in a separate process, each with its own keep-alive connection; the CPU each process
on the machine used per request (the clients' own apart) and the machine's idle time are recorded
beside the latencies. Not part of the test run.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import shutil
import socket
import statistics
import sys
import threading
import time
from pathlib import Path

import numpy as np

# benchmarks/ is on sys.path when a script runs
from common import RESULTS, MachineCpu, machine_header, percentiles, write_result

from vidlake.platform.config import load_settings  # noqa: E402
from vidlake.platform.lake import Lake  # noqa: E402

SUBJECTS = ["a man", "a woman", "a child", "a worker", "a chef", "a cyclist", "a dog", "a cat", "a forklift",
            "a delivery truck", "a red car", "a bus", "a nurse", "a surgeon", "a farmer", "a horse", "two players",
            "a goalkeeper", "a drone", "a robot arm", "a cell", "a bacterium", "a crane", "a security guard",
            "a teenager", "an elderly man", "a police officer", "a firefighter", "a student", "a skateboarder"]
ACTIONS = ["walks past", "picks up", "drops", "carries", "opens", "closes", "pushes", "pulls", "inspects",
           "slices", "pours", "throws", "catches", "kicks", "lifts", "stacks", "cleans", "repairs", "paints",
           "loads", "unloads", "climbs", "jumps over", "points at", "divides into", "collides with", "parks next to",
           "waves at", "hands over", "examines"]
OBJECTS = ["a cardboard box", "a pallet", "the door", "a ladder", "a bicycle", "a wooden crate", "the window",
           "a frying pan", "an onion", "a ball", "a suitcase", "a shopping cart", "a laptop", "a phone",
           "a coffee cup", "two daughter cells", "a petri dish", "a traffic cone", "a fence", "a tree",
           "a barrel", "a glass bottle", "a stack of papers", "a helmet", "a toolbox", "a bag of groceries",
           "the microscope slide", "a metal pipe", "a wheelbarrow", "a fire extinguisher"]
PLACES = ["in a warehouse", "in the kitchen", "on a busy street", "at the loading dock", "in the laboratory",
          "on the football pitch", "in the parking lot", "near the entrance", "in a hospital corridor",
          "on a construction site", "in the office", "by the river", "in a supermarket aisle", "on the farm",
          "under the microscope", "at night", "in the rain", "on a sunny afternoon", "in a factory hall",
          "next to the shelves"]
EXTRAS = ["", "", "", " while the camera pans left", " as people watch", " and then leaves the frame",
          " slowly", " quickly", " near a yellow sign", " while talking on the phone"]


def caption(rng: random.Random) -> str:
    s = f"{rng.choice(SUBJECTS)} {rng.choice(ACTIONS)} {rng.choice(OBJECTS)} {rng.choice(PLACES)}{rng.choice(EXTRAS)}"
    return s[0].upper() + s[1:] + "."


def make_queries(n: int, rng: random.Random) -> list[str]:
    out = []
    for _ in range(n):
        kind = rng.random()
        obj = rng.choice(OBJECTS).split(" ", 1)[-1]
        subj = rng.choice(SUBJECTS).split(" ", 1)[-1]
        if kind < 0.4:
            out.append(f"{subj} {rng.choice(ACTIONS).split()[0]} {obj}")
        elif kind < 0.7:
            out.append(f"{subj} {rng.choice(PLACES)}")
        elif kind < 0.9:
            out.append(obj)
        else:
            out.append(f"someone {rng.choice(ACTIONS)} {obj} {rng.choice(PLACES)}")
    return out


def generate_lake(lake: Lake, segments: int, videos: int, steps: int = 1, seed: int = 0):
    """``segments`` captions over ``videos`` videos, ~5 s each, plus a track on every 10th video,
    appended in ``steps`` equal parts of the videos; yields after each part (a lake that grows)."""
    import pyarrow as pa

    rng = random.Random(seed)
    per = segments // videos
    ids = [f"{i:064x}" for i in range(videos)]
    bounds = [round(videos * i / steps) for i in range(steps + 1)]
    for lo, hi in zip(bounds, bounds[1:]):
        n_vid = hi - lo
        lake.append("videos", pa.table({
            "video_id": ids[lo:hi], "uris": [[f"/archive/synthetic/{i:06d}.mp4"] for i in range(lo, hi)],
            "size": [10_000_000] * n_vid, "duration_s": [per * 5.0] * n_vid, "fps": [25.0] * n_vid,
            "frames": [per * 125] * n_vid, "width": [1280] * n_vid, "height": [720] * n_vid,
            "codec": ["h264"] * n_vid, "rotation": [0] * n_vid}))
        chunk = max(1, 100_000 // per)
        for start in range(lo, hi, chunk):
            vids = ids[start:min(start + chunk, hi)]
            n = len(vids) * per
            starts = np.tile(np.arange(per) * 5.0, len(vids))
            lake.append("captions", pa.table({
                "video_id": np.repeat(vids, per), "task": ["caption"] * n, "task_key": ["bench000caption0"] * n,
                "start_s": starts, "end_s": starts + 5.0, "text": [caption(rng) for _ in range(n)]}))
            tracked = [v for i, v in enumerate(vids, start) if i % 10 == 0]
            t = np.tile(np.arange(0, 20, 0.5), len(tracked))
            m = len(t)
            lake.append("tracks", pa.table({
                "video_id": np.repeat(tracked, 40), "task": ["track"] * m, "task_key": ["bench000track000"] * m,
                "query": ["the forklift"] * m, "label": ["forklift"] * m, "object_id": np.ones(m, np.int32),
                "id_scope": ["video"] * m, "t": t, "x": 100 + t * 10, "y": np.full(m, 300.0),
                "x_norm": (100 + t * 10) / 1280, "y_norm": np.full(m, 300 / 720),
                "box": [[90 + x * 10, 250.0, 200 + x * 10, 350.0] for x in t]}))
            print(f"  lake: {min(start + chunk, hi)}/{videos} videos", file=sys.stderr, flush=True)
        yield hi


@contextlib.contextmanager
def bench_lock(path: str | None):
    """Hold ``flock(path)`` (the same lock as ``flock PATH cmd``) while measuring or building."""
    if not path:
        yield
        return
    import fcntl

    with open(path, "a") as f:
        t0 = time.perf_counter()
        fcntl.flock(f, fcntl.LOCK_EX)
        print(f"  lock {path} after {time.perf_counter() - t0:.0f} s", file=sys.stderr, flush=True)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def dir_size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def load(fn, queries: list[str], clients: int) -> dict:
    """Run ``fn(client_state, query)`` over ``queries`` from ``clients`` threads; latency stats."""
    lat: list[float] = []
    errors = [0]
    lock = threading.Lock()
    it = iter(enumerate(queries))

    def worker() -> None:
        state: dict = {}
        mine = []
        while True:
            with lock:
                nxt = next(it, None)
            if nxt is None:
                break
            t0 = time.perf_counter()
            try:
                ok = fn(state, nxt[1])
            except Exception as exc:  # noqa: BLE001 - counted as an error
                ok = False
                state.clear()
                print(f"  error: {exc}", file=sys.stderr)
            mine.append(time.perf_counter() - t0)
            if not ok:
                with lock:
                    errors[0] += 1
        with lock:
            lat.extend(mine)

    started = time.perf_counter()
    threads = [threading.Thread(target=worker) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return _stats(lat, errors[0], time.perf_counter() - started)


def http_load(port: int, mode: str, k: int, queries: list[str], clients: int) -> dict:
    """``clients`` closed-loop HTTP clients over ``queries`` (aiohttp, each its own keep-alive connection), run
    as asyncio coroutines in a separate process so the load generator costs no GIL time of this process;
    latency stats as ``load``, and the CPU used per request."""
    import multiprocessing

    ctx = multiprocessing.get_context("spawn")
    parent, child = ctx.Pipe()
    proc = ctx.Process(target=_http_clients, args=(child, port, mode, k, queries, clients), daemon=True)
    before = MachineCpu.now()
    proc.start()
    lat, errors, wall, client_cpu = parent.recv()
    after = MachineCpu.now()
    proc.join()
    return {**_stats(lat, errors, wall), "cpu_ms_per_request": cpu_per_request(before, after, proc.pid, len(lat)),
            "client_cpu_ms_per_request": round(1000 * client_cpu / max(1, len(lat)), 2)}


def cpu_per_request(before: MachineCpu, after: MachineCpu, client: int, requests: int) -> dict:
    """Milliseconds of CPU per request by process name (replica, HAProxy, ... over the whole run; processes
    that started during the run count from zero, the ``client`` process is left out), and of idle time."""
    if not requests:
        return {}
    used = after.used_since(before, exclude={client})
    top = dict(list(used.items())[:6])
    return {**{k: round(1000 * v / requests, 2) for k, v in top.items()},
            "all": round(1000 * sum(used.values()) / requests, 2),
            "idle": round(1000 * after.idle_since(before) / requests, 2)}


def _http_clients(pipe, port: int, mode: str, k: int, queries: list[str], clients: int) -> None:
    """In the load generator's process: the clients; sends (latencies, errors, wall s, own CPU s) back."""
    import asyncio

    import aiohttp

    async def main() -> tuple[list[float], int, float]:
        lat: list[float] = []
        errors = 0
        it = iter(queries)

        async def client() -> None:
            nonlocal errors
            async with aiohttp.ClientSession(f"http://127.0.0.1:{port}", connector=aiohttp.TCPConnector(limit=1),
                                             timeout=aiohttp.ClientTimeout(total=30)) as http:
                for q in it:
                    t0 = time.perf_counter()
                    try:
                        async with http.get("/search", params={"mode": mode, "k": str(k), "q": q}) as r:
                            ok = r.status == 200 and b'"hits"' in await r.read()
                    except Exception as exc:  # noqa: BLE001 - counted as an error
                        ok = False
                        print(f"  error: {exc!r}", file=sys.stderr)
                    lat.append(time.perf_counter() - t0)
                    errors += not ok

        started = time.perf_counter()
        await asyncio.gather(*(client() for _ in range(clients)))
        return lat, errors, time.perf_counter() - started

    lat, errors, wall = asyncio.run(main())
    pipe.send((lat, errors, wall, time.process_time()))


def _stats(lat: list[float], errors: int, wall: float) -> dict:
    p50, p99 = percentiles(lat, 50, 99)
    return {"p50": p50 * 1000, "p99": p99 * 1000, "mean": statistics.fmean(lat) * 1000,
            "qps": len(lat) / wall, "errors": errors, "n": len(lat)}


def direct_search(seg, embedder, mode: str, k: int, settings, engine: str = "lancedb"):
    """One query the way a user would run it without vidlake, returning the columns a vidlake hit is
    made of: through LanceDB's query builder (``engine="lancedb"``), or through the Lance dataset under
    it (``"lance"``: ids and scores first, then the columns of the top k read by row id, hybrid fusing
    the ids of both retrievers in between; the calls ``Searcher`` makes for an index larger than
    ``search.hit_cache_rows``, which below it takes the columns from memory instead)."""
    from lance.query import MatchQuery as LanceMatch
    from lancedb.query import MatchQuery

    from vidlake.serve.ranking import fuse_rrf
    from vidlake.serve.search import HIT_COLUMNS as cols

    ds = seg.to_lance()

    def fts(q: str, n: int, columns: list[str]):
        if engine == "lance":
            return ds.to_table(columns=[*columns, "_score"], full_text_query=LanceMatch(q, "text"), limit=n,
                               with_row_id=True)
        return seg.search(MatchQuery(q, "text"), query_type="fts").limit(n).select([*columns, "_score"]).to_arrow()

    def ann(q: str, n: int, columns: list[str]):
        vec = embedder.embed_query(q)
        if engine == "lance":
            return ds.to_table(columns=[*columns, "_distance"], with_row_id=True, nearest={
                "column": "vector", "q": vec, "k": n, "metric": "cosine", "nprobes": settings.nprobes,
                "refine_factor": settings.refine_factor})
        return (seg.search(vec, vector_column_name="vector").distance_type("cosine").limit(n)
                .nprobes(settings.nprobes).refine_factor(settings.refine_factor).select([*columns, "_distance"])
                .to_arrow())

    def fn(state: dict, q: str) -> bool:
        if engine == "lance" and mode != "hybrid":
            ids = (fts(q, k, []) if mode == "bm25" else ann(q, k, []))["_rowid"].to_pylist()
            if ids:
                ds._take_rows(ids, columns=cols)
        elif mode == "bm25":
            fts(q, k, cols)
        elif mode == "semantic":
            ann(q, k, cols)
        elif engine == "lance":
            n = max(k, settings.candidates)
            top = fuse_rrf([fts(q, n, [])["_rowid"].to_pylist(), ann(q, n, [])["_rowid"].to_pylist()], settings.rrf_k)
            ds._take_rows([rid for rid, _ in top[:k]], columns=cols)
        else:
            n = max(k, settings.candidates)
            fuse_rrf([fts(q, n, [*cols, "doc_id"])["doc_id"].to_pylist(), ann(q, n, [*cols, "doc_id"])["doc_id"].to_pylist()],
                     settings.rrf_k)[:k]
        return True
    return fn


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--segments", type=int, default=1_000_000)
    ap.add_argument("--videos", type=int, default=20_000)
    ap.add_argument("--queries", type=int, default=10_000)
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--modes", default="bm25,semantic,hybrid")
    ap.add_argument("--workdir", default="/tmp/vidlake-bench-search")
    ap.add_argument("--reuse", action="store_true", help="Keep an existing lake and index of the same size.")
    ap.add_argument("--build-steps", type=int, default=1,
                    help="Write the lake in this many parts and update the index after each (incremental "
                    "builds; each holds --lock on its own).")
    ap.add_argument("--build-only", action="store_true", help="Stop after the build (or the reused index's size).")
    ap.add_argument("--lock", default=None,
                    help="flock this file around each build step and the query phase (e.g. /tmp/vidlake-bench.lock).")
    ap.add_argument("--replicas", type=int, default=None,
                    help="Serve replicas of the search app (serve.replicas; by default the service's default).")
    ap.add_argument("--ingress", choices=["haproxy", "proxy"], default="proxy",
                    help="Serve's Python proxy (what `vidlake serve` uses on loopback) or its HAProxy ingress "
                    "(RAY_SERVE_ENABLE_HA_PROXY=1; for the run, HAProxy's stats and metrics ports listen on every "
                    "interface, which `vidlake serve` refuses for a loopback service).")
    ap.add_argument("--out", type=Path, default=RESULTS / "search.md",
                    help="Markdown file the results go to, as its newest section.")
    args = ap.parse_args()
    from vidlake.serve.tuning import _haproxy_side_ports, prepare_ray

    work = Path(args.workdir) / f"{args.segments}x{args.videos}"
    settings = load_settings(lake={"uri": str(work / "lake")}, ray={"num_cpus": 2},
                             serve={"port": free_port(), "max_ongoing_requests": 64,
                                    **({"replicas": args.replicas} if args.replicas else {})})
    # as run_service does, before Ray starts: the ingress (HAProxy's side ports off busy 9101 / 8404), the
    # proxy's ready check, replicas and HAProxy at serve.niceness
    prepare_ray(settings.serve, joining=False)
    if args.ingress == "haproxy":  # measured as a cluster operator would run it; see --ingress
        os.environ["RAY_SERVE_ENABLE_HA_PROXY"] = "1"
        _haproxy_side_ports()
    lake = Lake(settings.lake.uri)
    report: dict = {"ingress": args.ingress, "replicas": settings.serve.replicas, "segments": args.segments,
                    "videos": args.videos, "queries": args.queries, "clients": args.clients, "k": args.k,
                    "cpus": os.cpu_count()}
    if not (args.reuse and (work / "lake" / "_search" / "_vidlake_index.json").exists()):
        from vidlake.jobs.index import run_index

        shutil.rmtree(work, ignore_errors=True)
        report.update(lake_s=0.0, index_s=0.0, embedded=0, build_steps=[])
        steps = generate_lake(lake, args.segments, args.videos, args.build_steps)
        while True:
            with bench_lock(args.lock):  # one lock holding per step: a growing lake, indexed after each part
                t0 = time.perf_counter()
                done = next(steps, None)
                if done is None:
                    break
                report["lake_s"] += time.perf_counter() - t0
                result = run_index(settings, show=False)
            step = {"videos": done, "mode": result.mode, "seconds": round(result.seconds, 1),
                    "embedded": result.embedded, "texts_per_s": round(result.embedded / result.seconds, 1)}
            report["build_steps"].append(step)
            report["index_s"] += result.seconds
            report["embedded"] += result.embedded
            print(json.dumps(step), file=sys.stderr, flush=True)
        json.dump(report, open(work / "build.json", "w"), indent=1)
    elif (work / "build.json").exists():
        report |= {k: v for k, v in json.load(open(work / "build.json")).items() if k not in report}
    report["index_bytes"] = dir_size(work / "lake" / "_search")
    report["segments_bytes"] = dir_size(next((work / "lake" / "_search").glob("segments_g*.lance")))
    print(json.dumps(report), file=sys.stderr, flush=True)

    if args.build_only:
        return
    queries = make_queries(args.queries, random.Random(1))
    report["distinct_queries"] = len(set(queries))
    with bench_lock(args.lock):
        results = run_queries(settings, queries, args, work / f"results-{args.ingress}.json")
    report["results"] = results
    print(json.dumps(report, indent=1))
    write_result(args.out, section(report), section=True)


def run_queries(settings, queries: list[str], args, partial: Path) -> dict:
    """Per mode: the HTTP clients through Serve, then the same queries straight to LanceDB (Serve idle).
    Each result is printed and saved to ``partial`` as soon as it is measured."""
    from ray import serve

    from vidlake.index.embed import Embedder
    from vidlake.index.store import IndexStore, index_uri_for
    from vidlake.platform.runtime import ensure_ray
    from vidlake.serve.deployment import build_app

    store = IndexStore(index_uri_for(settings))
    seg = store.connect().open_table(store.read_meta().tables["segments"])
    s = settings.search  # the engine the service uses, one thread per call (the 8 client threads share 2 cores)
    embedder = Embedder(s.embedding_model, s.device, batch_size=32, backend=s.embed_backend, threads=1)
    embedder.embed_query("warm up")
    ensure_ray(settings.ray)
    port = settings.serve.port
    serve.start(http_options={"host": "127.0.0.1", "port": port}, logging_config={"log_level": "WARNING"})
    serve.run(build_app(settings), name="bench", route_prefix="/")
    out: dict = {}
    try:
        for mode in args.modes.split(","):
            http_load(port, mode, args.k, queries[:200], args.clients)  # warm-up
            out[f"http {mode}"] = http_load(port, mode, args.k, queries, args.clients)
            print("http", mode, out[f"http {mode}"], file=sys.stderr, flush=True)
            for engine in ("lancedb", "lance"):
                fn = direct_search(seg, embedder, mode, args.k, settings.search, engine)
                load(fn, queries[:200], args.clients)
                out[f"{engine} {mode}"] = load(fn, queries, args.clients)
                print(engine, mode, out[f"{engine} {mode}"], file=sys.stderr, flush=True)
            partial.write_text(json.dumps(out, indent=1))
    finally:
        serve.shutdown()
    return out


def section(report: dict) -> str:
    """The run as a Markdown section: what was measured, on which machine, and the table."""
    return "\n".join([
        f"## {report['segments']:,} segments x {report['videos']:,} videos, {report['ingress']} ingress, "
        f"{report['replicas']} replica(s)", "",
        f"{machine_header(__file__)} {report['queries']:,} queries per mode ({report['distinct_queries']:,} "
        f"distinct), {report['clients']} closed-loop clients, k = {report['k']}. Index: built in "
        f"{report.get('index_s', 0):.0f} s, {report['index_bytes'] / 2**20:.0f} MiB.", "",
        markdown(report),
    ])


def markdown(report: dict) -> str:
    r = report["results"]
    paths = (("http", f"HTTP (Serve, {report.get('ingress', 'proxy')})"), ("lancedb", "LanceDB direct"),
             ("lance", "Lance dataset direct"))
    lines = ["| mode | path | p50 ms | p99 ms | QPS | errors | HTTP / this (p50) | HTTP / this (p99) |",
             "|---|---|---:|---:|---:|---:|---:|---:|"]
    for mode in ("bm25", "semantic", "hybrid"):
        h = r.get(f"http {mode}")
        for key, label in paths:
            x = r.get(f"{key} {mode}")
            if not x:
                continue
            ratio = f"{h['p50'] / x['p50']:.2f}x | {h['p99'] / x['p99']:.2f}x" if h and key != "http" else "|"
            lines.append(f"| {mode} | {label} | {x['p50']:.1f} | {x['p99']:.1f} | {x['qps']:.0f} | {x['errors']} "
                         f"| {ratio} |")
    for mode in ("bm25", "semantic", "hybrid"):
        h = r.get(f"http {mode}") or {}
        if h.get("cpu_ms_per_request"):
            lines.append(f"\nCPU per {mode} HTTP request, ms: "
                         + ", ".join(f"{k} {v}" for k, v in h["cpu_ms_per_request"].items())
                         + f"; the load generator (aiohttp) {h['client_cpu_ms_per_request']}")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
