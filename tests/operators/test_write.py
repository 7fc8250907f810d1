from vidlake.operators.write import WriteTables
from vidlake.platform.lake import Lake


def _win(i, start, end, task, parse, status="ok", total=2, query=None):
    return {
        "video_id": "v1", "uri": "/v1.mp4", "task": task, "task_key": f"k-{task}", "query": query,
        "window_id": f"w{i}", "window_index": i, "windows_total": total, "kind": "slow",
        "start_s": start, "end_s": end, "timestamps_s": [start, end], "status": status,
        "error_kind": None if status == "ok" else "out_of_memory", "error_stage": None if status == "ok" else "infer",
        "error": None if status == "ok" else "out of memory",
        "raw_text": "raw", "prompt": "p", **(parse or {}), "prompt_tokens": 10,
        "generated_tokens": 5, "model_id": "tiny", "model_revision": "r",
    }


def _pt(t, oid, x, y, label="car"):
    return {"label": label, "object_id": oid, "t": t, "x_norm": x, "y_norm": y, "x": x * 640, "y": y * 360}


def _parse(answer="", spans=(), points=(), tracks=(), count=None):
    captions = [{**c, "end_s": c["end_s"] if c["end_s"] is not None else 100.0} for c in spans]
    return {"answer": answer, "captions": captions, "points": list(points), "tracks": list(tracks),
            "count": count, "parse_status": "ok"}


def test_captions_dedup_overlap_and_commit_only_complete_videos(tmp_path):
    lake = Lake(str(tmp_path / "lake"))
    w = WriteTables(lake, "run1")
    w.add(_win(0, 0.0, 64.0, "caption", _parse(spans=[
        {"start_s": 1.0, "end_s": 5.0, "text": "a man enters"},
        {"start_s": 60.5, "end_s": 61.0, "text": "a dog barks"},
    ])))
    w.flush()
    assert not lake.exists("captions")  # window 2 of 2 not there yet: nothing visible
    assert w.incomplete == [("v1", "k-caption")]
    w.add(_win(1, 60.0, 100.0, "caption", _parse(spans=[
        {"start_s": 60.5, "end_s": 61.0, "text": "a dog barks"},
        {"start_s": 80.0, "end_s": None, "text": "the dog leaves"},
    ])))
    w.flush()
    caps = sorted(lake.read("captions").to_pylist(), key=lambda c: c["start_s"])
    assert [(c["start_s"], c["end_s"], c["text"]) for c in caps] == [
        (1.0, 5.0, "a man enters"), (60.5, 61.0, "a dog barks"), (80.0, 100.0, "the dog leaves")
    ]
    assert caps[1]["window_id"] == "w0"
    assert lake.read("outputs").num_rows == 2 and lake.read("windows").num_rows == 2


def test_rewriting_the_same_outputs_writes_nothing_twice(tmp_path):
    lake = Lake(str(tmp_path / "lake"))
    rows = [
        _win(0, 0.0, 10.0, "track", _parse(tracks=[_pt(t, 1, 0.1 + t / 100, 0.5) for t in range(0, 10)])),
        _win(1, 8.0, 18.0, "track", _parse(tracks=[_pt(t, 3, 0.1 + t / 100, 0.5) for t in range(8, 18)])),
    ]
    for run in ("run1", "run2"):
        w = WriteTables(lake, run)
        for r in rows:
            w.add(r)
        w.flush()
    tracks = lake.read("tracks").to_pylist()
    assert len(tracks) == 18  # t=8,9 seen by both windows, kept once
    assert {t["object_id"] for t in tracks} == {1} and {t["id_scope"] for t in tracks} == {"video"}
    assert {t["run_id"] for t in tracks} == {"run1"}


def test_counts_from_points_and_failed_windows_are_errors(tmp_path):
    lake = Lake(str(tmp_path / "lake"))
    w = WriteTables(lake, "run1")
    w.add(_win(0, 0.0, 10.0, "count", _parse(points=[_pt(2.0, 1, 0.2, 0.2), _pt(4.0, 2, 0.8, 0.8)], count=2),
               total=3, query="cars"))
    w.add(_win(1, 9.0, 19.0, "count", None, status="error", total=3, query="cars"))
    w.add(_win(2, 18.0, 28.0, "count", _parse(answer="There are 4 cars.", count=4), total=3, query="cars"))
    w.flush()
    counts = lake.read("counts").to_pylist()
    assert [(c["query"], c["count"], c["event_times_s"]) for c in counts] == [("cars", 2, [2.0, 4.0])]
    errors = lake.read("errors").to_pylist()
    assert [(e["stage"], e["error_kind"]) for e in errors] == [("infer", "out_of_memory")]
    assert w.stats.windows_failed == 1 and w.stats.windows_ok == 2
