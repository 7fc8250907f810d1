"""The science tables of a lake as CSV and Parquet, side by side: ``<table>.csv`` and ``<table>.parquet``.

Parquet keeps the lake's Arrow types (UTC timestamps, lists). CSV has one header row and, per cell:
instants as ISO 8601 with their offset (``2026-06-01T06:59:50.000000+00:00``), wall-clock times (the
``*_local`` columns) as ISO 8601 without one, lists as JSON (``[0.5, 1.0]``), null as an empty cell.
"""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from vidlake.analysis.exports.common import Exported, read_table
from vidlake.platform.lake import Lake

__all__ = ["OPTIONAL_TABLES", "REQUIRED_TABLES", "export_tables", "to_csv_frame"]

REQUIRED_TABLES = ("counts", "points", "tracks")  # written even when empty (a header only)
OPTIONAL_TABLES = ("videos", "deployments", "placements", "analysis_counts", "analysis_presence", "analysis_tracks",
                   "analysis_crossings", "analysis_zone_visits")  # written when the lake has them


def export_tables(lake: Lake, folder: Path) -> Exported:
    """Write each table of the lake that the science user reads, as CSV and Parquet, into ``folder``."""
    result = Exported()
    folder.mkdir(parents=True, exist_ok=True)
    for table in (*REQUIRED_TABLES, *OPTIONAL_TABLES):
        if table in OPTIONAL_TABLES and not lake.exists(table):
            continue
        data = read_table(lake, table)
        pq.write_table(data, folder / f"{table}.parquet")
        to_csv_frame(data).write_csv(folder / f"{table}.csv")
        result.rows[f"{table}.parquet"] = result.rows[f"{table}.csv"] = data.num_rows
    return result


def to_csv_frame(data: pa.Table) -> pl.DataFrame:
    """``data`` with every column CSV can hold as text: times as ISO 8601, lists as JSON."""
    frame = pl.from_arrow(data)
    columns = []
    for name, dtype in frame.schema.items():
        column = pl.col(name)
        if isinstance(dtype, pl.Datetime):
            pattern = "%Y-%m-%dT%H:%M:%S%.6f" + ("%:z" if dtype.time_zone else "")
            column = column.dt.strftime(pattern)
        elif isinstance(dtype, (pl.List, pl.Array, pl.Struct)):
            column = column.map_elements(lambda v: json.dumps(v.to_list() if hasattr(v, "to_list") else v),
                                         return_dtype=pl.String, skip_nulls=True)
        columns.append(column.alias(name))
    return frame.select(columns)
