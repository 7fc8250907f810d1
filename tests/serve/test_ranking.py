"""Pure search logic: no LanceDB, no Ray, no HTTP."""

import pytest

from vidlake.serve.ranking import (
    filter_clause, fuse_rrf, highlight, join_evidence, overlaps, query_terms, samples_clause, stem,
)

V1, V2 = "a" * 64, "b" * 64


def test_stem_and_terms():
    assert {stem(w) for w in ("drops", "dropped", "dropping", "drop")} == {"drop"}
    assert stem("boxes") == stem("box") == "box"
    assert stem("cells") == "cell" and stem("is") == "is"
    assert stem("bicycles") == stem("bicycle") and stem("slicing") == stem("slices") == stem("slice")
    assert query_terms("A forklift DROPS a box!") == ["forklift", "drop", "box"]
    assert query_terms("the of") == ["the", "of"]  # all stopwords: keep them rather than nothing
    assert query_terms("") == []


def test_highlight_escapes_and_marks_word_forms():
    marked, spans = highlight("The forklift dropped <two> boxes & a box.", query_terms("forklift drops box"))
    assert marked == ("The <mark>forklift</mark> <mark>dropped</mark> &lt;two&gt; <mark>boxes</mark> &amp; "
                      "a <mark>box</mark>.")
    assert [("The forklift dropped <two> boxes & a box."[s:e]) for s, e in spans] == [
        "forklift", "dropped", "boxes", "box"]
    assert highlight("<b>nothing</b>", ["zebra"]) == ("&lt;b&gt;nothing&lt;/b&gt;", [])


def test_rrf_fuses_and_breaks_ties_stably():
    fused = fuse_rrf([["a", "b", "c"], ["c", "a", "d"]], k=60)
    assert [d for d, _ in fused] == ["a", "c", "b", "d"]
    assert fused[0][1] == pytest.approx(1 / 61 + 1 / 62)
    assert fuse_rrf([["x", "y"], ["y", "x"]])[0][0] == "x"  # equal scores: first seen wins
    assert fuse_rrf([[], []]) == []


@pytest.mark.parametrize("span,window,expected", [
    ((3.0, 6.0), (None, None), True),
    ((3.0, 6.0), (6.0, 9.0), True),  # touching ends overlap (closed ranges)
    ((3.0, 6.0), (6.01, 9.0), False),
    ((3.0, 6.0), (0.0, 2.99), False),
    ((3.0, 6.0), (4.0, 5.0), True),  # window inside
    ((3.0, 6.0), (None, 3.0), True),
    ((3.0, 6.0), (7.0, None), False),
])
def test_overlaps(span, window, expected):
    assert overlaps(*span, *window) is expected


def test_filter_clause_is_built_only_from_safe_values():
    assert filter_clause() is None
    assert filter_clause(V1, "caption", None, 1.5, 9.0) == (
        f"video_id = '{V1}' AND task = 'caption' AND end_s >= 1.5 AND start_s <= 9.0")
    assert filter_clause(task_key="0123456789abcdef", sources=("captions",)) == (
        "task_key = '0123456789abcdef' AND source IN ('captions')")
    for bad in ("x' OR 1=1 --", "Caption", "a b"):
        with pytest.raises(ValueError):
            filter_clause(video_id=bad)


def test_samples_clause_merges_ranges_per_video():
    clause = samples_clause([(V1, 0.0, 2.0), (V1, 1.5, 3.0), (V1, 5.0, 6.0), (V2, 1.0, 1.0)])
    assert clause == (f"(video_id = '{V1}' AND ((t >= 0.0 AND t <= 3.0) OR (t >= 5.0 AND t <= 6.0))) OR "
                      f"(video_id = '{V2}' AND ((t >= 1.0 AND t <= 1.0)))")
    assert samples_clause([]) is None


def _s(source, video, t, obj, key="k1", label="cup"):
    return {"source": source, "video_id": video, "t": t, "object_id": obj, "task_key": key, "label": label,
            "x": 10.0, "y": 20.0, "x_norm": 0.1, "y_norm": 0.2, "box": [1.0, 2.0, 3.0, 4.0] if source == "tracks" else None}


def test_join_evidence_uses_closed_time_ranges_and_the_hit_video():
    hits = [{"video_id": V1, "start_s": 2.0, "end_s": 4.0}, {"video_id": V2, "start_s": 0.0, "end_s": 10.0},
            {"video_id": V1, "start_s": 9.0, "end_s": 9.5}]
    samples = [_s("points", V1, 2.0, 1), _s("points", V1, 4.0, 2), _s("points", V1, 4.01, 3),
               _s("tracks", V1, 3.0, 7), _s("tracks", V1, 3.5, 7), _s("tracks", V1, 1.9, 8),
               _s("tracks", V2, 5.0, 7)]
    ev = join_evidence(hits, samples)
    assert [p["object_id"] for p in ev[0]["points"]] == [1, 2]
    assert [(t["object_id"], t["t_first"], t["t_last"], t["samples"]) for t in ev[0]["tracks"]] == [(7, 3.0, 3.5, 2)]
    assert ev[0]["tracks"][0]["boxes"][0]["box"] == [1.0, 2.0, 3.0, 4.0]
    assert ev[1]["points"] == [] and [t["object_id"] for t in ev[1]["tracks"]] == [7]
    assert ev[2] == {"points": [], "tracks": [], "truncated": False}


def test_join_evidence_caps_and_says_so():
    samples = [_s("points", V1, i / 10, i) for i in range(80)] + [_s("tracks", V1, i / 10, 1) for i in range(30)]
    ev = join_evidence([{"video_id": V1, "start_s": 0.0, "end_s": 100.0}], samples, max_points=50, max_boxes=20)[0]
    assert len(ev["points"]) == 50 and ev["tracks"][0]["samples"] == 30 and len(ev["tracks"][0]["boxes"]) == 20
    assert ev["truncated"]
