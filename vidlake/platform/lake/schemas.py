"""Every lake table's Arrow schema, in one place.

A table is a Delta table at ``<lake>/<name>``. ``KEYS`` names each table's logical key (what makes
a row unique); writers rely on it for exactly-once commits. Columns are added here first, then
written; readers (DuckDB, Polars, Spark) see exactly these types.
"""

from __future__ import annotations

import pyarrow as pa

__all__ = ["ERRORS", "KEYS", "RUNS", "SCHEMAS", "VIDEOS", "empty_table", "schema_for"]

_TS = pa.timestamp("us", tz="UTC")

VIDEOS = pa.schema(
    [
        pa.field("video_id", pa.string(), nullable=False),  # sha256 of the bytes
        pa.field("uris", pa.list_(pa.string()), nullable=False),  # every place this content was seen
        pa.field("size", pa.int64()),
        pa.field("duration_s", pa.float64()),
        pa.field("fps", pa.float64()),  # average frame rate
        pa.field("frames", pa.int64()),  # counted from the stream's packets
        pa.field("width", pa.int32()),  # coded size, before rotation
        pa.field("height", pa.int32()),
        pa.field("codec", pa.string()),
        pa.field("rotation", pa.int32()),  # display rotation in degrees (as PyAV's VideoFrame.rotation)
        pa.field("has_audio", pa.bool_()),
        pa.field("damage", pa.string()),  # null, or why only part of the file is readable
        pa.field("first_seen", _TS),
        pa.field("run_id", pa.string()),  # run that first saw it
    ]
)

ERRORS = pa.schema(
    [
        pa.field("uri", pa.string()),
        pa.field("video_id", pa.string()),  # null when the file could not be hashed
        pa.field("stage", pa.string(), nullable=False),  # probe, sample, infer, parse, write
        pa.field("error_kind", pa.string(), nullable=False),  # stable slug, see docs/errors.md
        pa.field("message", pa.string()),
        pa.field("size", pa.int64()),  # file size and mtime when it failed: a changed file is retried
        pa.field("mtime", pa.float64()),
        pa.field("run_id", pa.string(), nullable=False),
        pa.field("at", _TS),
    ]
)

RUNS = pa.schema(
    [
        pa.field("run_id", pa.string(), nullable=False),
        pa.field("job", pa.string(), nullable=False),  # ingest, caption, analyze, index
        pa.field("status", pa.string(), nullable=False),  # running, completed, failed
        pa.field("started_at", _TS),
        pa.field("ended_at", _TS),
        pa.field("seconds", pa.float64()),
        pa.field("sources", pa.list_(pa.string())),
        pa.field("spec_json", pa.string()),  # the settings / job spec the run used
        pa.field("task_keys", pa.list_(pa.string())),
        pa.field("model_id", pa.string()),
        pa.field("model_revision", pa.string()),
        pa.field("vidlake_version", pa.string()),
        pa.field("files_found", pa.int64()),
        pa.field("videos_new", pa.int64()),
        pa.field("videos_known", pa.int64()),
        pa.field("failed", pa.int64()),
        pa.field("metrics_json", pa.string()),  # job-specific counts and timings
        pa.field("message", pa.string()),  # why a failed run failed
    ]
)

SCHEMAS: dict[str, pa.Schema] = {"videos": VIDEOS, "errors": ERRORS, "runs": RUNS}

KEYS: dict[str, tuple[str, ...]] = {
    "videos": ("video_id",),
    "errors": ("uri", "stage", "run_id"),
    "runs": ("run_id",),
}


def schema_for(table: str) -> pa.Schema:
    try:
        return SCHEMAS[table]
    except KeyError:
        raise KeyError(f"unknown lake table {table!r}; known: {', '.join(sorted(SCHEMAS))}") from None


def empty_table(table: str) -> pa.Table:
    return schema_for(table).empty_table()
