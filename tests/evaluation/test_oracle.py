"""The oracle engine through the whole job: what the platform itself loses between a perfect model and the lake.

The synthetic world's truth is exact, and the oracle answers every window from it for exactly the frames it
was given; so every count, point, track id and time in the lake can be checked against the truth.
"""

from __future__ import annotations

import csv
import math
from collections import defaultdict
from pathlib import Path

from vidlake.evaluation.world import match_query
from vidlake.platform.lake import Lake


def _truth(world: Path):
    """name -> PTS in ms -> [(object_id, label, x, y)], and name -> every frame's PTS."""
    frames: dict[str, dict[int, list]] = defaultdict(lambda: defaultdict(list))
    with open(world / "points.csv") as f:
        for r in csv.DictReader(f):
            frames[r["video"]][round(float(r["time_s"]) * 1000)].append(
                (int(r["object_id"]), r["label"], float(r["x"]), float(r["y"])))
    pts = {}
    for path in (world / "frames").glob("*.csv"):
        with open(path) as f:
            pts[path.stem] = [float(r["time_s"]) for r in csv.DictReader(f)]
    return frames, pts


def _names(lake: Lake) -> dict[str, str]:
    return {v["video_id"]: Path(v["uris"][0]).name for v in lake.read("videos").to_pylist()}


def _sampled(lake: Lake, task_key: str) -> dict[str, list[float]]:
    """Every frame time the model saw per video for one task_key (its windows' timestamps)."""
    keys = {o["window_id"] for o in lake.read("outputs").to_pylist() if o["task_key"] == task_key}
    out: dict[str, set] = defaultdict(set)
    for w in lake.read("windows").to_pylist():
        if w["window_id"] in keys:
            out[w["video_id"]].update(w["timestamps_s"])
    return {k: sorted(v) for k, v in out.items()}


def _fast_keys(lake: Lake) -> set[str]:
    """The task keys that ran on the fast pass (one sparse sweep per video)."""
    fast = {w["window_id"] for w in lake.read("windows").to_pylist() if w["kind"] == "fast"}
    return {o["task_key"] for o in lake.read("outputs").to_pylist() if o["window_id"] in fast}


def _runs(truth: dict[int, list], sampled: list[float], query: str) -> dict[int, int]:
    """Per truth object answering ``query``: how many runs of consecutive sampled frames show it."""
    runs: dict[int, int] = defaultdict(int)
    before: set[int] = set()
    for t in sampled:
        now = {o[0] for o in truth.get(round(t * 1000), ()) if match_query(query, o[1])}
        for obj in now - before:
            runs[obj] += 1
        before = now
    return runs


def test_counts_are_exact_even_when_objects_leave_and_come_back(world, lake, queries):
    """The count is the distinct objects pointed at: ids are joined across windows where both windows saw
    the object in their overlap, and by appearance where it was away through the overlap and came back.
    So every count equals the objects the sampled frames show, however often each left and returned."""
    frames, _ = _truth(world)
    names, fast = _names(lake), _fast_keys(lake)
    counts = [c for c in lake.read("counts").to_pylist() if c["task_key"] not in fast]
    assert len(counts) == len(names) * len(queries)
    came_back = 0
    for c in counts:
        runs = _runs(frames[names[c["video_id"]]], _sampled(lake, c["task_key"])[c["video_id"]], c["query"])
        assert c["count"] == len(runs), (names[c["video_id"]], c["query"], runs)
        came_back += sum(n > 1 for n in runs.values())
    assert came_back >= 3  # the world made objects return: the check above covers re-identification


def test_counts_on_the_fast_pass_are_exact(world, lake):
    """One answer over a sparse sweep of the whole video keeps every object's id: its count is exactly the
    objects its frames show."""
    frames, _ = _truth(world)
    names, fast = _names(lake), _fast_keys(lake)
    counts = [c for c in lake.read("counts").to_pylist() if c["task_key"] in fast]
    assert len({c["video_id"] for c in counts}) >= 3  # the videos longer than one window
    for c in counts:
        runs = _runs(frames[names[c["video_id"]]], _sampled(lake, c["task_key"])[c["video_id"]], c["query"])
        assert c["count"] == len(runs), (names[c["video_id"]], c["query"])


def test_points_lie_on_the_truth_at_the_frames_pts(world, lake):
    frames, pts = _truth(world)
    names = _names(lake)
    points = [p for p in lake.read("points").to_pylist() if p["task"] == "point"]
    assert points
    seen = set()
    for p in points:
        name = names[p["video_id"]]
        assert any(abs(p["t"] - t) < 1e-6 for t in pts[Path(name).stem]), (name, p["t"])  # a frame's PTS
        truth = [o for o in frames[name][round(p["t"] * 1000)] if match_query(p["query"], o[1])]
        best = min(truth, key=lambda o: math.dist((o[2], o[3]), (p["x"], p["y"])))
        assert math.dist((best[2], best[3]), (p["x"], p["y"])) <= 1.0, (name, p)  # rotated videos too
        key = (p["video_id"], p["query"], round(p["t"] * 1000), best[0])
        assert key not in seen, f"object {best[0]} pointed twice at {p['t']} in {name}"  # no duplicate in overlaps
        seen.add(key)


def test_track_ids_hold_for_the_whole_video(world, lake):
    """An object keeps one track id for the whole video: across window boundaries while it stays visible,
    and when it leaves and comes back; no id is given to two objects."""
    frames, _ = _truth(world)
    names = _names(lake)
    tracks = lake.read("tracks").to_pylist()
    assert tracks
    by_seq: dict[tuple, list] = defaultdict(list)
    for r in tracks:
        by_seq[(r["video_id"], r["query"])].append(r)
    boundaries = 0
    ids_of: dict[tuple, set] = defaultdict(set)  # (video, query, truth id) -> lake ids
    objects_of: dict[tuple, set] = defaultdict(set)  # (video, query, lake id) -> truth ids
    windows = defaultdict(list)
    for w in lake.read("windows").to_pylist():
        windows[w["video_id"]].append((w["start_s"], w["end_s"]))
    for (video_id, query), rows in by_seq.items():
        truth = frames[names[video_id]]
        ids_at: dict[int, dict[int, int]] = defaultdict(dict)  # sampled ms -> truth id -> lake id
        for r in rows:
            ms = round(r["t"] * 1000)
            best = min((o for o in truth[ms] if match_query(query, o[1])),
                       key=lambda o: math.dist((o[2], o[3]), (r["x"], r["y"])))
            assert best[0] not in ids_at[ms], "one object, two ids at one time"
            ids_at[ms][best[0]] = r["object_id"]
            ids_of[(video_id, query, best[0])].add(r["object_id"])
            objects_of[(video_id, query, r["object_id"])].add(best[0])
        times = [round(t * 1000) for t in _sampled(lake, rows[0]["task_key"])[video_id]]
        for a, b in zip(times, times[1:]):
            for obj, lake_id in ids_at.get(a, {}).items():
                if obj in ids_at.get(b, {}):  # visible on two consecutive sampled frames: one id
                    assert ids_at[b][obj] == lake_id, (names[video_id], query, obj, a, b)
                    boundaries += any(a / 1000 < e <= b / 1000 + 1e-6 for _, e in windows[video_id])
    assert boundaries > 0  # some of those pairs crossed a window boundary
    assert {k: v for k, v in ids_of.items() if len(v) > 1} == {}
    assert {k: v for k, v in objects_of.items() if len(v) > 1} == {}


def test_captions_name_the_objects_at_their_times(world, lake):
    captions = lake.read("captions").to_pylist()
    assert captions and all("appear" in c["text"] or "leave" in c["text"] or "no shapes" in c["text"]
                            for c in captions)
    assert all(c["start_s"] <= c["end_s"] for c in captions)
