"""``vidlake export LAKE --format camtrap-dp|mot|csv --out DIR``: standard exports of the lake.

    camtrap-dp  a Camtrap DP 1.0 package, validated with frictionless before it is written out
    mot         MOTChallenge files of the tracks, as vidlake's ground-truth reader reads them
    csv         the science tables as CSV and Parquet

Every problem of the request fails before any work (``ConfigError`` saying what to run first). The files
are built in a temporary folder and then written to ``out`` (a local folder or s3://) through the
storage; a run ends with a summary and a ``runs`` row (job ``export``). See docs/exports.md.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

import polars as pl

from vidlake.analysis.exports.camtrap import DETECTION_TASKS, export_camtrap_dp
from vidlake.analysis.exports.camtrap_schema import report_problems, validate_camtrap_dp
from vidlake.analysis.exports.common import Skipped
from vidlake.analysis.exports.mot import export_mot
from vidlake.analysis.exports.tables import REQUIRED_TABLES, export_tables
from vidlake.errors import ConfigError, JobFailed
from vidlake.platform.config import Settings
from vidlake.platform.lake import Lake
from vidlake.platform.lake.runs import RunRecord
from vidlake.platform.storage import check_bucket, is_s3, split_s3_uri, write_files

__all__ = ["FORMATS", "ExportResult", "check_export", "run_export"]

FORMATS = ("camtrap-dp", "mot", "csv")


@dataclass
class ExportResult:
    run_id: str
    format: str
    out: str
    files: list[str] = field(default_factory=list)  # every file written, as a path or URI under out
    rows: dict[str, int] = field(default_factory=dict)  # file (relative to out) -> data rows
    skipped: list[Skipped] = field(default_factory=list)  # what the format could not hold, and why
    seconds: float = 0.0


def check_export(lake: Lake, fmt: str, out: str, taxa: dict[str, str] | None = None) -> None:
    """Every problem of the request as a ``ConfigError`` that says what to do; nothing is written."""
    if fmt not in FORMATS:
        raise ConfigError(f"unknown export format {fmt!r}: use one of {', '.join(FORMATS)}")
    if not any(lake.exists(t) for t in ("videos", "outputs", "runs")):
        raise ConfigError(f"{lake.uri} is not a vidlake lake (no videos, outputs or runs table): check the path")
    if not is_s3(out) and Path(out).exists() and not Path(out).is_dir():
        raise ConfigError(f"--out {out} is a file: give a folder (it is created when missing)")
    if fmt == "camtrap-dp":
        _check_camtrap(lake, taxa or {})
    elif fmt == "mot" and (not lake.exists("tracks") or not lake.read("tracks", columns=["video_id"]).num_rows):
        raise ConfigError(f"{lake.uri} has no tracks: run a track task (`vidlake run` with tasks: "
                          "[{task: track, queries: [...]}]) first")
    elif fmt == "csv" and not any(lake.exists(t) for t in REQUIRED_TABLES):
        raise ConfigError(f"{lake.uri} has no counts, points or tracks: run a count, point or track task "
                          "(`vidlake run`) first")


def _check_camtrap(lake: Lake, taxa: dict[str, str]) -> None:
    missing = [t for t in ("deployments", "placements") if not lake.exists(t)]
    if missing:
        raise ConfigError(f"a Camtrap DP package needs the {' and '.join(missing)} of {lake.uri}: run "
                          "`vidlake analyze` with a deployments file first")
    located = lake.read("deployments", columns=["latitude", "longitude"]).to_pylist()
    if not any(d["latitude"] is not None and d["longitude"] is not None for d in located):
        raise ConfigError(f"no deployment of {lake.uri} has a latitude and longitude (Camtrap DP requires them): add "
                          "them to the deployments file and run `vidlake analyze` again")
    outputs = pl.from_arrow(lake.read("outputs", columns=["task", "query"])) if lake.exists("outputs") else None
    if outputs is None or not outputs.filter(pl.col("task").is_in(DETECTION_TASKS)).height:
        raise ConfigError(f"{lake.uri} has no count, point or track outputs to observe with: run a count, point or "
                          "track task (`vidlake run`) first")
    bad = [f"{k!r}: {v!r}" for k, v in taxa.items() if not isinstance(v, str) or not v.strip()]
    if bad:
        raise ConfigError(f"taxa must map each query to a scientific name; got {', '.join(bad)}")
    queries = set(outputs.filter(pl.col("task").is_in(DETECTION_TASKS))["query"].drop_nulls())
    unknown = sorted(set(taxa) - queries)
    if unknown:
        raise ConfigError(f"taxa names queries no count, point or track task asked: {unknown}; the lake's queries: "
                          f"{sorted(queries)}")


def run_export(lake_uri: str, fmt: str, out: str, settings: Settings, show: bool = True,
               taxa: dict[str, str] | None = None) -> ExportResult:
    """Export ``lake_uri`` as ``fmt`` into ``out``; ``taxa`` (camtrap-dp): query -> scientific name."""
    lake = Lake(lake_uri, settings.storage)
    check_export(lake, fmt, out, taxa)
    if is_s3(out):  # an unreachable bucket fails now, not after the export is built
        check_bucket(out, settings.storage, f"the bucket {split_s3_uri(out)[0]!r} of {out}")
    spec = {"lake": lake.uri, "format": fmt, "out": out, "taxa": taxa or {}}
    with RunRecord(lake, "export", spec_json=json.dumps(spec, sort_keys=True)) as record:
        result = ExportResult(run_id=record.run_id, format=fmt, out=out)
        with tempfile.TemporaryDirectory(prefix="vidlake-export-") as tmp:
            folder = Path(tmp)
            if fmt == "camtrap-dp":
                exported = export_camtrap_dp(lake, folder, taxa)
                report = validate_camtrap_dp(folder)
                if not report.valid:
                    raise JobFailed("the Camtrap DP package does not validate, nothing was written to "
                                    f"{out}:\n  " + "\n  ".join(report_problems(report)))
            else:
                exported = export_mot(lake, folder) if fmt == "mot" else export_tables(lake, folder)
            names = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())
            result.files = write_files(folder, names, out, settings.storage)
        result.rows, result.skipped = exported.rows, exported.skipped
        result.seconds = record.seconds
        record.finish("completed", metrics={"format": fmt, "out": out, "files": len(result.files),
                                            "rows": result.rows, "skipped": [asdict(s) for s in result.skipped]})
    if show:
        _print(result, lake)
    return result


def _print(result: ExportResult, lake: Lake) -> None:
    from vidlake.platform.runtime.progress import print_summary

    rows: list[tuple[str, object]] = [("files written", len(result.files))]
    shown = list(result.rows.items())
    rows += [(name, n) for name, n in shown[:12]]
    if len(shown) > 12:
        rows.append((f"... {len(shown) - 12} more files", sum(n for _, n in shown[12:])))
    rows.append(("left out", len(result.skipped)))
    rows += [(s.item, s.reason) for s in result.skipped[:5]]
    rows.append(("seconds", result.seconds))
    print_summary(f"export {result.run_id} ({result.format}) {lake.uri} -> {result.out}", rows)
