"""What the export formats share: the files an export wrote, what it left out and why, CSV writing,
times as ISO 8601 with the deployment's offset, names safe as file names."""

from __future__ import annotations

import csv
import hashlib
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Iterable
from zoneinfo import ZoneInfo

import pyarrow as pa

from vidlake.platform.lake import Lake
from vidlake.platform.lake.schemas import schema_for

__all__ = ["Exported", "Skipped", "csv_value", "iso_seconds", "read_table", "slug", "stable_id", "write_csv"]


@dataclass(frozen=True)
class Skipped:
    """Something the lake has that the export could not hold (``item``: a video, a set, a table), and why."""

    item: str
    reason: str


@dataclass
class Exported:
    """What one format wrote into its folder: rows per file (relative path) and what it left out."""

    rows: dict[str, int] = field(default_factory=dict)
    skipped: list[Skipped] = field(default_factory=list)


def read_table(lake: Lake, table: str, columns: list[str] | None = None) -> pa.Table:
    """A lake table (empty when absent) with its declared Arrow types: files a merge wrote can hold
    ``string_view`` or ``large_string`` columns, which would otherwise leak into the export."""
    data = lake.read(table, columns=columns)
    schema = schema_for(table)
    return data.cast(pa.schema([schema.field(name) for name in data.column_names]))


def write_csv(path: Path, columns: list[str], rows: Iterable[dict[str, Any]]) -> int:
    """``rows`` under a header of ``columns`` (UTF-8, ``\\n`` line ends, empty cell for null); the row count."""
    path.parent.mkdir(parents=True, exist_ok=True)
    n = 0
    with open(path, "w", newline="", encoding="utf-8") as f:
        out = csv.writer(f, lineterminator="\n")
        out.writerow(columns)
        for row in rows:
            out.writerow([csv_value(row.get(c)) for c in columns])
            n += 1
    return n


def csv_value(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


def iso_seconds(when: datetime, zone: str | None, up: bool = False) -> str:
    """``when`` (aware) on the clock of ``zone`` (IANA; UTC when None), to the second with its offset:
    ``2026-06-01T08:59:50+02:00``. Camtrap DP's datetime format has no fractions, so a time is cut to
    the second below, or above with ``up`` (an interval's end, so the interval still holds the instant)."""
    if up and when.microsecond:
        when = when + timedelta(seconds=1)
    local = when.replace(microsecond=0).astimezone(ZoneInfo(zone or "UTC"))
    return local.isoformat(timespec="seconds")


def slug(text: str) -> str:
    """A name safe as a file or folder name: lower-case letters, digits and ``-``."""
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "x"


def stable_id(*parts: str) -> str:
    """A short id that is the same for the same parts on every export."""
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:16]
