from vidlake.operators.merge import caption_midpoint, keep_owned, link_track_ids, owned_spans


def test_owned_spans_split_overlaps_at_midpoint():
    spans = owned_spans([(0.0, 64.0), (60.0, 124.0), (120.0, 150.0)])
    assert [(s.start_s, s.end_s) for s in spans] == [(0.0, 62.0), (62.0, 122.0), (122.0, 150.0)]
    single = owned_spans([(0.0, 10.0)])
    assert single[0].contains(10.0, last=True) and not single[0].contains(10.5, last=True)


def test_keep_owned_drops_overlap_duplicates():
    spans = owned_spans([(0.0, 64.0), (60.0, 124.0)])
    a = [{"start_s": 58.0, "end_s": 63.0, "text": "dup"}, {"start_s": 0.0, "end_s": 5.0, "text": "start"}]
    b = [{"start_s": 58.5, "end_s": 63.5, "text": "dup"}, {"start_s": 100.0, "end_s": 110.0, "text": "late"}]
    kept = keep_owned(a, spans[0], False, caption_midpoint) + keep_owned(b, spans[1], True, caption_midpoint)
    assert sorted(c["text"] for c in kept) == ["dup", "late", "start"]
    assert [c["start_s"] for c in kept if c["text"] == "dup"] == [58.0]


def _pt(t, oid, x, y):
    return {"t": t, "object_id": oid, "x_norm": x, "y_norm": y}


def test_track_ids_follow_objects_across_windows():
    windows = [(0.0, 10.0), (8.0, 18.0)]
    w0 = [_pt(t, 1, 0.1 + t * 0.01, 0.5) for t in range(0, 10)] + [_pt(t, 2, 0.9, 0.9) for t in range(0, 5)]
    # in window 1 the model numbers the same car as 2, and a new object as 1
    w1 = [_pt(t, 2, 0.1 + t * 0.01, 0.5) for t in range(8, 18)] + [_pt(t, 1, 0.5, 0.1) for t in range(12, 18)]
    rows = link_track_ids([w0, w1], windows)
    car = {r["object_id"] for r in rows if abs(r["y_norm"] - 0.5) < 1e-9}
    assert car == {1}
    ids = {(r["object_id"], r["id_scope"]) for r in rows}
    assert ids == {(1, "video"), (2, "window"), (3, "window")}


def test_single_window_ids_are_video_scoped():
    rows = link_track_ids([[_pt(0.0, 1, 0.1, 0.1), _pt(0.5, 2, 0.2, 0.2)]], [(0.0, 5.0)])
    assert {(r["object_id"], r["id_scope"]) for r in rows} == {(1, "video"), (2, "video")}


RED, BLUE = [1.0, 0.0, 0.0, 0.0], [0.0, 0.0, 1.0, 0.0]  # appearance vectors (any histogram length works)


def _look(*vectors):
    from vidlake.operators import appearance

    n = appearance.BINS ** 3
    return [v + [0.0] * (n - len(v)) for v in vectors]


def test_an_object_away_through_the_overlap_is_reidentified_by_its_looks():
    windows = [(0.0, 10.0), (8.0, 18.0), (16.0, 26.0)]
    red, blue = _look(RED, RED), _look(BLUE, BLUE)
    w0 = [_pt(t, 1, 0.2, 0.2) for t in range(0, 4)] + [_pt(t, 2, 0.8, 0.8) for t in range(0, 3)]
    w1 = [_pt(t, 1, 0.5, 0.5) for t in range(12, 15)]  # the blue one, back far from where it left
    w2 = [_pt(t, 1, 0.1, 0.9) for t in range(20, 26)]  # the red one, back
    looks = [{1: [*red[0], *red[1]], 2: [*blue[0], *blue[1]]}, {1: [*blue[0], *blue[1]]}, {1: [*red[0], *red[1]]}]
    rows = link_track_ids([w0, w1, w2], windows, looks)
    ids = {(r["t"], r["x_norm"]): r["object_id"] for r in rows}
    assert ids[(0, 0.2)] == ids[(20, 0.1)] == 1 and ids[(0, 0.8)] == ids[(12, 0.5)] == 2
    assert {r["id_scope"] for r in rows} == {"appearance"}
    assert len({r["object_id"] for r in link_track_ids([w0, w1, w2], windows)}) == 4  # by position alone


def test_a_lookalike_joins_the_closest_and_a_simultaneous_object_never_joins():
    windows = [(0.0, 10.0), (8.0, 18.0)]
    red, redder = _look(RED, RED), _look([0.9, 0.1, 0.0, 0.0], RED)
    w0 = [_pt(t, 1, 0.2, 0.2) for t in range(0, 4)] + [_pt(t, 2, 0.8, 0.2) for t in range(0, 4)]
    w1 = [_pt(t, 1, 0.5, 0.5) for t in range(12, 15)]
    looks = [{1: [*redder[0], *redder[1]], 2: [*red[0], *red[1]]}, {1: [*red[0], *red[1]]}]
    rows = link_track_ids([w0, w1], windows, looks)  # two red ones left: one is back, the closer look wins
    assert {r["object_id"] for r in rows if r["t"] >= 12} == {2} and len({r["object_id"] for r in rows}) == 2
    both = [*red[0], *red[1]]
    w0 = [_pt(t, 1, 0.2, 0.2) for t in range(0, 13)]  # still in view when the other red one shows
    w1 = [_pt(t, 1, 0.2, 0.2) for t in range(8, 13)] + [_pt(t, 2, 0.7, 0.7) for t in range(12, 15)]
    rows = link_track_ids([w0, w1], windows, [{1: both}, {1: both, 2: both}])
    assert len({r["object_id"] for r in rows}) == 2


def test_the_overlap_is_where_both_windows_have_frames():
    """A window's first frame can lie just before its planned start (the frame on screen then); an object
    seen only on that frame in the overlap is still joined."""
    from datetime import datetime, timezone

    from vidlake.operators.merge import merge_windows

    def window(i, start, end, times, points):
        return {"video_id": "v", "task": "track", "task_key": "k", "window_id": f"w{i}", "status": "ok",
                "start_s": start, "end_s": end, "timestamps_s": times, "query": "cars",
                "tracks": [{"t": t, "object_id": 1, "label": "car", "x": x * 100, "y": 50, "x_norm": x, "y_norm": 0.5}
                           for t, x in points]}

    rows = [window(0, 0.0, 6.0, [0.0, 1.0, 2.0, 3.0, 3.97, 5.0], [(3.0, 0.3), (3.97, 0.4)]),
            window(1, 4.0, 10.0, [3.97, 5.0, 6.0, 7.0, 8.0, 9.0], [(3.97, 0.4), (7.0, 0.9)])]
    tracks = merge_windows(rows, "r", datetime.now(timezone.utc))["tracks"]
    assert {r["object_id"] for r in tracks} == {1}
