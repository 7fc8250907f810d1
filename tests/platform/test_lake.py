from datetime import datetime, timezone

import duckdb
import polars as pl
import pytest

from vidlake.platform.config import StorageSettings
from vidlake.platform.lake import SCHEMAS, Lake
from vidlake.platform.lake.ids import TaskIdentity, hash_stream, new_run_id, window_id


def test_ids_are_stable():
    import io

    digest, n = hash_stream(io.BytesIO(b"abc" * 10_000_000), chunk_bytes=1 << 20)
    assert n == 30_000_000 and len(digest) == 64
    s = {"fps": 2.0, "max_frames": 128}
    assert window_id("v", 0.0, 64.0, s) == window_id("v", 0.0, 64.0, dict(reversed(s.items())))
    assert window_id("v", 0.0, 64.0, s) != window_id("v", 0.0, 64.5, s)
    key = TaskIdentity("caption", "v1", None, "m", "r", s).key
    assert key != TaskIdentity("caption", "v2", None, "m", "r", s).key
    assert key == TaskIdentity("caption", "v1", None, "m", "r", dict(reversed(s.items()))).key
    assert key == "0fcdb260d9cc17af"  # the key of lakes written before TaskIdentity: rows stay found
    assert new_run_id() != new_run_id()


def test_missing_table_reads_empty_with_schema(tmp_path):
    lake = Lake(str(tmp_path / "lake"))
    for name, schema in SCHEMAS.items():
        assert lake.read(name).schema == schema
        assert not lake.exists(name)
    with pytest.raises(KeyError, match="known"):
        lake.read("nope")


def _video(video_id, uris):
    return {"video_id": video_id, "uris": uris, "size": 10, "duration_s": 1.5, "fps": 25.0, "frames": 37,
            "width": 64, "height": 48, "codec": "h264", "rotation": 0, "first_seen": datetime.now(timezone.utc)}


def test_append_upsert_update_and_foreign_readers(tmp_path):
    lake = Lake(str(tmp_path / "lake"))
    lake.upsert("videos", [_video("a", ["/x"])], update_columns=["uris"])
    lake.upsert("videos", [{"video_id": "a", "uris": ["/x", "/y"]}, _video("b", ["/z"])], update_columns=["uris"])
    rows = {r["video_id"]: r for r in lake.read("videos").to_pylist()}
    assert rows["a"]["uris"] == ["/x", "/y"] and rows["a"]["frames"] == 37  # update kept the other columns
    assert rows["b"]["uris"] == ["/z"]
    lake.append("runs", [{"run_id": "r1", "job": "ingest", "status": "running"}])
    lake.update_row("runs", {"run_id": "r1", "job": "ingest"}, {"status": "completed", "seconds": 2.5})
    assert lake.read("runs", columns=["status", "seconds"]).to_pylist() == [{"status": "completed", "seconds": 2.5}]
    # DuckDB and Polars read the same tables
    videos = lake.delta("videos").to_pyarrow_dataset()
    assert duckdb.sql("select count(*), sum(frames) from videos").fetchall() == [(2, 74)]
    assert pl.read_delta(lake.table_uri("videos")).height == 2


@pytest.mark.s3
def test_lake_on_s3(s3_endpoint, s3_bucket):
    lake = Lake(f"s3://{s3_bucket}/lake", StorageSettings(endpoint_url=s3_endpoint))
    lake.upsert("videos", [_video("a", ["s3://b/x"])], update_columns=["uris"])
    lake.append("errors", [{"uri": "s3://b/bad", "stage": "probe", "error_kind": "empty_file", "run_id": "r"}])
    assert lake.read("videos", columns=["video_id"]).to_pylist() == [{"video_id": "a"}]
    assert lake.read("errors").num_rows == 1
    opts = {"AWS_ENDPOINT_URL": s3_endpoint, "AWS_ALLOW_HTTP": "true"}
    assert pl.read_delta(lake.table_uri("videos"), storage_options=opts).height == 1


def test_a_read_only_lake_is_one_clear_storage_error(tmp_path):
    """Mounted read-only in a private mount namespace (root can write anywhere else), as a user's NFS share
    or a bucket without write permission would be."""
    import shutil
    import subprocess
    import sys

    if not shutil.which("unshare"):
        pytest.skip("needs unshare (util-linux) for a read-only mount")
    lake = Lake(str(tmp_path / "lake"))
    lake.append("runs", [{"run_id": "r1", "job": "ingest", "status": "running"}])
    code = ("from vidlake.platform.lake import Lake\nfrom vidlake.errors import StorageError\n"
            f"lake = Lake({lake.uri!r})\n"
            "for write in (lambda: lake.append('runs', [{'run_id': 'r2', 'job': 'x', 'status': 'running'}]),\n"
            "              lambda: lake.update_row('runs', {'run_id': 'r1', 'job': 'ingest', 'status': 'x'}, {'seconds': 1.0})):\n"
            "    try:\n        write()\n    except StorageError as exc:\n        print('ERROR', exc)\n")
    script = f"mount --bind {tmp_path} {tmp_path} && mount -o remount,bind,ro {tmp_path} && exec {sys.executable} -c \"$0\""
    out = subprocess.run(["unshare", "-m", "sh", "-c", script, code], capture_output=True, text=True, timeout=120)
    if "mount" in out.stderr and "ERROR" not in out.stdout:
        pytest.skip(f"read-only mounts are not permitted here: {out.stderr.strip()[:200]}")
    errors = [line for line in out.stdout.splitlines() if line.startswith("ERROR")]
    assert len(errors) == 2 and all("permission denied" in e and lake.uri in e for e in errors), out
    assert lake.read("runs").num_rows == 1  # nothing half-written


def test_a_table_an_older_vidlake_wrote_gains_the_new_columns(tmp_path):
    """points had no image_id before image sets: a merge that names it first adds the column."""
    import pyarrow as pa
    from deltalake import write_deltalake

    from vidlake.platform.lake.schemas import POINTS

    row = {"video_id": "a" * 64, "task": "point", "task_key": "b" * 16, "query": "q", "label": "l", "t": 1.0,
           "object_id": 1, "x": 1.0, "y": 1.0, "x_norm": 0.1, "y_norm": 0.1, "window_id": "w", "run_id": "r"}
    old = pa.schema([f for f in POINTS if f.name != "image_id"])
    write_deltalake(str(tmp_path / "points"), pa.Table.from_pylist([row], schema=old))
    lake = Lake(str(tmp_path))
    new = [{**row, "t": 2.0, "image_id": "i"}, row]
    assert lake.replace_pairs("points", new, [(row["video_id"], row["task_key"])]) == 2
    got = sorted((r["t"], r["image_id"]) for r in lake.read("points").to_pylist())
    assert got == [(1.0, None), (2.0, "i")]
    version = lake.version("points")
    lake.replace_pairs("points", new, [(row["video_id"], row["task_key"])])  # the same rows again: no duplicate
    assert lake.read("points").num_rows == 2 and lake.version("points") == version + 1
