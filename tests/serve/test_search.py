"""Searcher over a built index (LanceDB, real embedding model): ranking, filters, evidence, timelines;
no Ray, no HTTP."""

import pytest

from index.fixtures import open_searcher
from vidlake.platform.config import load_settings


@pytest.mark.parametrize("mode", ["bm25", "semantic", "hybrid"])
def test_the_right_moment_ranks_first(searcher, search_lake, mode):
    _, ids = search_lake
    top = searcher.search("a forklift drops a box", k=3, mode=mode)[0]
    assert (top["video_id"], top["start_s"], top["end_s"], top["source"]) == (ids["warehouse"], 10.0, 14.0, "captions")
    assert "<mark>forklift</mark>" in top["highlight"] and "<mark>drops</mark>" in top["highlight"]
    # evidence: the box point at 11.5 s and the forklift track samples inside 10..14 s
    assert [(p["label"], p["t"]) for p in top["evidence"]["points"]] == [("box", 11.5)]
    (track,) = top["evidence"]["tracks"]
    assert (track["object_id"], track["label"], track["t_first"], track["t_last"], track["samples"]) == (
        3, "forklift", 10.0, 14.0, 5)
    assert set(top["scores"]) == {"bm25", "semantic"} if mode == "hybrid" else {mode}


def test_semantic_finds_meaning_without_shared_words(searcher, search_lake):
    _, ids = search_lake
    assert "bm25" not in searcher.search("cells dividing", k=1, mode="semantic")[0]["scores"]
    top = searcher.search("mitosis seen through a lens", k=1, mode="semantic")[0]
    assert (top["video_id"], top["start_s"]) == (ids["microscope"], 0.0)
    assert searcher.search("mitosis seen through a lens", k=5, mode="bm25") == []
    top = searcher.search("someone on a cellphone call", k=1, mode="hybrid")[0]
    assert top["video_id"] == ids["carphone"]


def test_answers_and_labels_are_searchable(searcher, search_lake):
    _, ids = search_lake
    hits = searcher.search("what is the man holding", k=3, mode="bm25")
    assert hits[0]["source"] == "answers" and hits[0]["text"].endswith("He is holding a mobile phone to his ear.")
    (label,) = [h for h in searcher.search("bicycle", k=10, mode="bm25") if h["source"] == "tracks"]
    assert (label["video_id"], label["start_s"], label["end_s"]) == (ids["bikes"], 0.5, 5.0)
    assert sorted(t["object_id"] for t in label["evidence"]["tracks"]) == [1, 2]


def test_filters_video_time_and_task(searcher, search_lake):
    _, ids = search_lake
    only = searcher.search("cyclist", k=10, mode="hybrid", video_id=ids["bikes"])
    assert only and {h["video_id"] for h in only} == {ids["bikes"]}
    late = searcher.search("cyclist", k=10, mode="bm25", t_from=6.0)
    assert [(h["start_s"], h["end_s"]) for h in late] == [(7.0, 10.0)]
    window = searcher.search("forklift", k=10, mode="bm25", video_id=ids["warehouse"], t_from=4.0, t_to=6.0)
    assert all(h["end_s"] >= 4.0 and h["start_s"] <= 6.0 for h in window) and len(window) == 2
    assert {h["task"] for h in searcher.search("forklift", k=10, mode="hybrid", task="track")} == {"track"}
    by_key = searcher.search("forklift", k=10, mode="hybrid", task_key="c0ffee0000000001")
    assert by_key and {h["task_key"] for h in by_key} == {"c0ffee0000000001"}
    assert searcher.search("forklift", k=10, mode="semantic", video_id=ids["microscope"], t_from=100.0) == []


def test_timeline_tasks_and_counts(searcher, search_lake):
    _, ids = search_lake
    events, truncated = searcher.timeline(ids["bikes"], 2.0, 5.0, 100)
    assert not truncated
    assert [(e["kind"], e["t"]) for e in events] == [
        ("captions", 0.0), ("tracks", 2.0), ("tracks", 2.5), ("tracks", 3.0), ("captions", 3.5), ("tracks", 4.0),
        ("tracks", 5.0)]
    events, truncated = searcher.timeline(ids["bikes"], None, None, 3)
    assert truncated and len(events) == 3 and [e["t"] for e in events] == sorted(e["t"] for e in events)
    tasks = {t["task"]: t for t in searcher.tasks(ids["warehouse"])}
    assert (tasks["caption"]["captions"], tasks["track"]["tracks"], tasks["track"]["labels"]) == (3, 10, ["forklift"])
    assert (tasks["point"]["start_s"], tasks["point"]["end_s"]) == (11.5, 11.5)
    (count,) = searcher.counts("BOXES", None, 10)
    assert (count["video_id"], count["count"], count["event_times_s"]) == (ids["warehouse"], 1, [11.5])
    assert searcher.counts("zebra'; drop table", None, 10) == []
    assert searcher.counts(None, ids["bikes"], 10) == []


def test_evidence_kept_from_the_start(searcher):
    # a small evidence table is read whole when the index is opened, so no search waits on an evidence read
    assert searcher.with_samples and set(searcher._samples) == searcher.with_samples
    assert searcher._samples.currsize == searcher.ev_ds.count_rows()


@pytest.mark.parametrize("mode", ["bm25", "semantic", "hybrid"])
def test_hits_from_memory_equal_hits_read_by_row_id(search_lake, embedder, searcher, mode):
    """search.hit_cache_rows: a small index keeps its hit columns in memory; a Searcher that reads them
    by row id (hit_cache_rows=0) answers the same, filters included."""
    settings, ids = search_lake
    assert searcher._hits is not None and searcher._hits.num_rows == searcher.ds.count_rows()
    reading = open_searcher(load_settings(lake={"uri": settings.lake.uri}, search={"hit_cache_rows": 0}), embedder)
    assert reading._hits is None
    for query, kw in (("a forklift drops a box", {}), ("cyclist", {"video_id": ids["bikes"]}),
                      ("what is the man holding", {"task": "qa"}), ("nothing like this anywhere", {})):
        assert searcher.search(query, k=10, mode=mode, **kw) == reading.search(query, k=10, mode=mode, **kw), query


def test_a_set_hit_carries_its_images_and_evidence_on_them(searcher, search_lake, search_sets):
    from datetime import datetime

    deer = search_sets["deer"]
    (top,) = searcher.search("a deer grazing in a forest clearing", k=1, mode="hybrid")
    assert (top["media"], top["video_id"], top["source"], top["start_s"], top["end_s"]) == (
        "set", deer, "captions", 0.0, 6.0)
    image_set = top["image_set"]
    assert (image_set["kind"], image_set["label"], image_set["start_local"]) == ("burst", None, datetime(2026, 6, 1, 9))
    images = image_set["images"]
    assert [(i["uri"].rsplit("/", 1)[-1], i["t"], i["captured_local"].strftime("%H:%M:%S"), i["width"], i["height"],
             i["in_hit"]) for i in images] == [
        ("IMG_10.JPG", 0.0, "09:00:00", 64, 48, True), ("IMG_11.JPG", 2.0, "09:00:02", 64, 48, True),
        ("IMG_12.JPG", 4.0, "09:00:04", 64, 48, True), ("IMG_13.JPG", 6.0, "09:00:06", 64, 48, True)]
    # the deer label's hit spans its first to last point (0..4 s): three images; each point names its image
    (label,) = [h for h in searcher.search("deer", k=10, mode="bm25") if h["source"] == "points"]
    assert [i["in_hit"] for i in label["image_set"]["images"]] == [True, True, True, False]
    ids = [i["image_id"] for i in images]
    assert [(p["image_id"], p["x"], p["y"]) for p in label["evidence"]["points"]] == [
        (ids[0], 20.0, 30.0), (ids[0], 44.0, 30.0), (ids[2], 32.0, 24.0)]
    assert all(h["media"] == "video" and h["image_set"] is None
               for h in searcher.search("a forklift drops a box", k=5, mode="bm25"))
    only = searcher.search("badger", k=10, mode="hybrid", video_id=search_sets["badger"])
    assert only and {h["video_id"] for h in only} == {search_sets["badger"]}


def test_timeline_and_counts_of_a_set(searcher, search_sets):
    deer = search_sets["deer"]
    events, _ = searcher.timeline(deer, None, None, 100)
    assert [(e["kind"], e["t"]) for e in events] == [("captions", 0.0), ("points", 0.0), ("points", 0.0), ("points", 4.0)]
    assert events[3]["image_id"] == searcher.sets[deer]["image_ids"][2]
    (count,) = searcher.counts("deer", None, 10)
    assert (count["video_id"], count["media"], count["count"], count["method"]) == (deer, "set", 2, "max_per_image")
