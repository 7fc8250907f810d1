"""Accuracy benchmark: a synthetic archive through the main job with the oracle engine, the tiny model and the
toy model, then ``vidlake eval`` on each lake.

    .venv/bin/python benchmarks/accuracy.py [--videos 20] [--seed 0] [--max-seconds 240] [--workdir DIR]
        [--engines oracle,tiny,toy] [--toy-model toy|DIR] [--out FILE]

Input: ``vidlake synth`` (vidlake.evaluation.synth) with ``--videos`` videos (every 4th lasts ``--max-seconds``,
the others 60-180 s: minutes each, many windows per video), built once into ``--workdir`` and reused. Job: caption, and count, point and track for
"shapes", "circles", "squares" and "triangles", and count again on the fast pass (one sparse sweep of each
video, one answer, so ids hold for the whole video); 2 fps, 16-frame windows with 2 s overlap, 126 px; run by
``run_job`` on a local Ray (the RayExecutor, as ``vidlake run`` does). The oracle answers every window from
the truth for exactly the frames sampled, so what its lake loses against the truth is the platform's own
loss (parsing, time shifting, coordinate mapping, window merging, id linking); the tiny model's random
weights give the noise floor; the toy model (``--model toy``, trained only on such worlds, never on seed 0-2)
is a model in between, run with 1 s overlap on windows and a fast pass of at most 8 frames (the job caps
them to the 2-8 frames its checkpoint was trained on: docs/sampling.md). Then
``vidlake index`` on each lake and ``run_eval`` with search. The toy model generates every token of its
answers on the CPU: at 20 videos its job takes long; ``--videos 2 --max-seconds 30 --out
benchmarks/results/accuracy-toy.md`` is the run its results come from. ``--toy-model DIR`` puts another
checkpoint of ``vidlake model train-toy`` in the toy row.

Goals with the oracle: count exact accuracy 100%, point F1 >= 0.99, HOTA >= 0.95, no id switch at a window
boundary. Writes benchmarks/results/accuracy.md (then accuracy-notes.md, the analysis, if present). A
benchmark, not a test: nothing here asserts.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path

# benchmarks/ is on sys.path when a script runs
from common import RESULTS, machine_header, write_result

QUERIES = ["shapes", "circles", "squares", "triangles"]
SHORT_SECONDS = (60.0, 180.0)  # the length of the videos that are not the long ones
SAMPLING = {"fps": 2, "max_frames": 16, "overlap_s": 2.0, "size": 126, "fast_pass": True}
TOY_SAMPLING = {**SAMPLING, "overlap_s": 1.0}  # its windows capped by the job to the 8 frames it was trained on


def world(workdir: Path, videos: int, seed: int, max_seconds: float) -> Path:
    """The synthetic archive, made again only when its parameters changed."""
    from vidlake.evaluation.synth import make_synthetic

    root = workdir / f"world-{videos}-{seed}-{max_seconds:g}"
    if not (root / "world.json").is_file():
        make_synthetic(root, videos=videos, seed=seed, max_seconds=max_seconds, short_seconds=SHORT_SECONDS)
    return root


def run_engine(name: str, model: dict, root: Path, workdir: Path, max_new_tokens: int | None,
               sampling: dict = SAMPLING) -> dict:
    """The job, the index and the evaluation of one engine on its own lake; wall seconds of each."""
    from vidlake.jobs.eval import run_eval
    from vidlake.jobs.index import run_index
    from vidlake.jobs.run import run_job
    from vidlake.jobs.spec import parse_job_spec
    from vidlake.platform.config import LakeSettings, load_settings

    lake = workdir / f"lake-{name}"
    shutil.rmtree(lake, ignore_errors=True)
    limit = {"max_new_tokens": max_new_tokens} if max_new_tokens else {}
    tasks = [{"task": "caption", **limit}] + [{"task": t, "queries": QUERIES, **limit} for t in ("count", "point", "track")]
    tasks.append({"task": "count", "queries": QUERIES, "windows": "fast", **limit})  # one answer per video
    spec = parse_job_spec({"name": f"accuracy-{name}", "sources": [str(root / "videos")], "lake": str(lake),
                           "model": model, "tasks": tasks, "sampling": sampling})
    settings = load_settings().model_copy(update={"lake": LakeSettings(uri=str(lake))})
    print(f"{name}: job", flush=True)
    began = time.perf_counter()
    job = run_job(spec, settings, show=False)
    job_s = time.perf_counter() - began
    print(f"{name}: index", flush=True)
    run_index(settings)
    print(f"{name}: eval", flush=True)
    began = time.perf_counter()
    result = run_eval(str(lake), str(root), settings)
    return {"job": job, "job_s": job_s, "eval": result, "eval_s": time.perf_counter() - began}


def boundary_switches(lake_uri: str, root: Path) -> tuple[int, int]:
    """(id switches at a window boundary, pairs of consecutive sampled frames across a boundary that show one
    object): an object visible on the last sampled frame before a boundary's owned split and the first after
    it must keep its track id."""
    import bisect
    import math
    from collections import defaultdict

    import pyarrow.csv as pacsv

    from vidlake.evaluation.world import match_query
    from vidlake.platform.lake import Lake

    lake = Lake(lake_uri)
    names = {v["video_id"]: Path(v["uris"][0]).name for v in lake.read("videos").to_pylist()}
    truth: dict[tuple[str, int], list] = defaultdict(list)
    for r in pacsv.read_csv(root / "points.csv").to_pylist():
        truth[(r["video"], round(r["time_s"] * 1000))].append(r)
    windows = defaultdict(list)  # the dense windows (the fast pass is one window per video: no boundary)
    for w in lake.read("windows").to_pylist():
        if w["kind"] != "fast":
            windows[w["video_id"]].append(w)
    switches = pairs = 0
    rows = defaultdict(dict)  # (video, query, ms) -> truth id -> lake id
    for r in lake.read("tracks").to_pylist():
        ms = round(r["t"] * 1000)
        near = [o for o in truth[(names[r["video_id"]], ms)] if match_query(r["query"], o["label"])]
        if near:
            best = min(near, key=lambda o: math.dist((o["x"], o["y"]), (r["x"], r["y"])))
            rows[(r["video_id"], r["query"], ms)][best["object_id"]] = r["object_id"]
    for video_id, ws in windows.items():
        times = sorted({round(t * 1000) for w in ws for t in w["timestamps_s"]})
        for w in sorted(ws, key=lambda w: w["start_s"])[1:]:
            first = round(min([w["start_s"], *w["timestamps_s"]]) * 1000)  # a frame can lie just before the start
            i = max(0, bisect.bisect_left(times, first) - 1)
            for a, b in zip(times[i:], times[i + 1:]):  # consecutive sampled frames into the window and on
                if b > first + 4000:
                    break
                for query in QUERIES:
                    before, after = rows.get((video_id, query, a), {}), rows.get((video_id, query, b), {})
                    for obj in before.keys() & after.keys():
                        pairs += 1
                        switches += before[obj] != after[obj]
    return switches, pairs


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--videos", type=int, default=20)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--max-seconds", type=float, default=240, help="length of every 4th video")
    ap.add_argument("--tiny-tokens", type=int, default=48, help="max_new_tokens of the tiny model's answers")
    ap.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "vidlake-bench" / "accuracy")
    ap.add_argument("--engines", default="oracle,tiny,toy", help="comma-separated: oracle, tiny, toy")
    ap.add_argument("--toy-model", default="toy", help="the toy row's checkpoint: toy (the shipped one) or a "
                    "folder written by vidlake model train-toy")
    ap.add_argument("--out", type=Path, default=RESULTS / "accuracy.md")
    args = ap.parse_args()
    from vidlake.models.tiny import ensure_tiny

    began = time.perf_counter()
    args.workdir.mkdir(parents=True, exist_ok=True)
    root = world(args.workdir, args.videos, args.seed, args.max_seconds)
    tiny = ensure_tiny(args.workdir / "tiny-molmo2-seed0")
    runs = {
        "oracle": lambda: run_engine("oracle", {"name": f"oracle:{root}"}, root, args.workdir, None),
        "tiny": lambda: run_engine("tiny", {"name": "tiny", "tiny_dir": str(tiny), "local_files_only": True}, root,
                                   args.workdir, args.tiny_tokens),
        "toy": lambda: run_engine("toy", {"name": args.toy_model}, root, args.workdir, None, TOY_SAMPLING),
    }
    wanted = args.engines.split(",")
    if "oracle" not in wanted or not set(wanted) <= runs.keys():
        raise SystemExit(f"--engines: oracle and any of tiny, toy (got {args.engines})")
    engines = {name: runs[name]() for name in runs if name in wanted}
    switches = boundary_switches(str(args.workdir / "lake-oracle"), root)
    write_result(args.out, report(args, root, engines, switches, time.perf_counter() - began),
                 notes=args.out.with_name(args.out.stem + "-notes.md"))


def report(args, root: Path, engines: dict, switches: tuple[int, int], total_s: float) -> str:
    meta = json.loads((root / "world.json").read_text())
    videos = meta["videos"]
    seconds = sum(v["duration_s"] for v in videos)
    kinds = sorted({v["kind"] for v in videos})
    metrics: dict[tuple, dict[str, float]] = {}
    for name, e in engines.items():
        for r in e["eval"].rows:
            metrics.setdefault((r["task"], r["windows"] or "", r["query"], r["metric"]), {})[name] = r["value"]
    oracle = engines["oracle"]["eval"]
    get = lambda task, metric, windows="slow": min(  # noqa: E731 - the worst query's value of the oracle
        (v["oracle"] for (t, w, q, m), v in metrics.items() if t == task and w == windows and m == metric
         and "oracle" in v), default=float("nan"))
    lines = [
        "# Accuracy benchmark", "",
        f"{machine_header(__file__)} Ran {total_s:.0f} s. Command: `.venv/bin/python benchmarks/accuracy.py "
        f"--videos {args.videos} --seed {args.seed} --max-seconds {args.max_seconds:g} --engines {args.engines}"
        + (f" --toy-model {args.toy_model}" if args.toy_model != "toy" else "")
        + (f" --out {args.out}" if args.out != RESULTS / "accuracy.md" else "") + "`.", "",
        f"Input: `vidlake synth` (short videos {min(SHORT_SECONDS[0], args.max_seconds):g}-{min(SHORT_SECONDS[1], args.max_seconds):g} s), {len(videos)} videos, {seconds / 60:.1f} minutes in all (kinds: {', '.join(kinds)}); "
        f"truth fingerprint {oracle.fingerprint[:12]}. Job: caption, and count, point and track for "
        f"{', '.join(QUERIES)}; sampling {SAMPLING}; the local Ray (RayExecutor). Engines: the oracle "
        f"(`oracle:DIR`, perfect answers for exactly the sampled frames)"
        + (f", the tiny random-weight Molmo 2 (at most {args.tiny_tokens} new tokens: the noise floor)" if "tiny" in engines else "")
        + (f", the toy Molmo 2 (`--model {args.toy_model}`, trained on other worlds of shapes; sampling {TOY_SAMPLING}, "
                  "windows and fast pass capped by the job to the frames its checkpoint was trained on)"
           if "toy" in engines else "") + ".", "",
        "| engine | windows ok | failed | job s | eval s |", "|---|---:|---:|---:|---:|",
        *(f"| {n} | {e['job'].windows_ok} | {e['job'].windows_failed} | {e['job_s']:.1f} | {e['eval_s']:.1f} |"
          for n, e in engines.items()), "",
        "Goals with the oracle (the worst query):", "",
        f"- count exact accuracy on the dense windows: {get('count', 'count_exact'):.3f} (goal 1.000; whole-video counts "
        f"of counts.csv: {get('count', 'count_exact_all_frames'):.3f}); on the fast pass (one answer per video): "
        f"{get('count', 'count_exact', 'fast'):.3f} (whole-video counts: {get('count', 'count_exact_all_frames', 'fast'):.3f})",
        f"- point F1: {get('point', 'point_f1'):.3f} (goal >= 0.99)",
        f"- track HOTA: {get('track', 'track_hota'):.3f} (goal >= 0.95); ID switches (TrackEval, all): "
        f"{max(v['oracle'] for (t, w, q, m), v in metrics.items() if m == 'track_id_switches' and 'oracle' in v):.0f}",
        f"- ID switches at a window boundary (an object on the sampled frames on both sides of a window start, "
        f"within 4 s): {switches[0]} of {switches[1]} pairs (goal 0)", "",
        *(f"- {n}" for n in oracle.notes), "",
        "Every metric (`vidlake eval`, per task and query; the tiny model's answers are noise):", "",
        "| task | windows | query | metric | " + " | ".join(engines) + " |", "|---|---|---|---|" + "---:|" * len(engines),
    ]
    for (task, windows, query, metric), v in sorted(metrics.items(), key=lambda kv: tuple(x or "" for x in kv[0])):
        cell = lambda x: "" if x is None else f"{x:.3f}" if x != int(x) else f"{x:.0f}"  # noqa: E731
        lines.append(f"| {task} | {windows} | {query or '(all)'} | {metric} | "
                     + " | ".join(cell(v.get(name)) for name in engines) + " |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
