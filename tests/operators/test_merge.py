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
