"""``vidlake report LAKE [--spec SPEC] --out DIR``: self-contained HTML reports with plots, and their numbers.

    checks: the lake has outputs; each analysis of the spec has results (``vidlake analyze`` ran it)
    pages: one per analysis (vidlake/analysis/report/analysis_pages.py), or, without a spec, what the lake
           holds (lake_pages.py); rendered into a temporary folder, then copied file by file to ``out``
           (a local folder or s3://) with ``write_files``, the index last

Every problem of the input fails before anything is written; a run ends with a summary and a ``runs``
row (job ``report``). See docs/reports.md.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from vidlake import __version__
from vidlake.analysis.report import Frames, Page, counts_page, lake_pages, tracks_page, write_report
from vidlake.analysis.spec import AnalysisFile, CountsAnalysis
from vidlake.errors import ConfigError
from vidlake.platform.config import Settings
from vidlake.platform.lake import Lake
from vidlake.platform.lake.runs import RunRecord
from vidlake.platform.storage import join_uri, storage_for, write_files

__all__ = ["ReportResult", "check_report", "run_report"]


@dataclass
class ReportResult:
    run_id: str
    out: str
    pages: list[str] = field(default_factory=list)  # HTML files written, relative to out (index.html last)
    plots: dict[str, int] = field(default_factory=dict)  # page file -> plots on it
    tables: list[str] = field(default_factory=list)  # CSV and Parquet files written, relative to out
    seconds: float = 0.0


def check_report(lake: Lake, spec: AnalysisFile | None) -> None:
    """``ConfigError`` naming what to run first when the lake lacks what the report needs."""
    if not lake.exists("outputs"):
        raise ConfigError(f"{lake.uri} has no model outputs (no `outputs` table): run `vidlake run` first")
    if spec is None:
        return
    ran = set()
    if lake.exists("analysis_inputs"):  # the ledger is written last: a fingerprint there has all its results
        ran = set(lake.read("analysis_inputs", columns=["fingerprint"])["fingerprint"].to_pylist())
    for analysis in spec.analyses:
        table = "analysis_counts" if isinstance(analysis, CountsAnalysis) else "analysis_tracks"
        if analysis.fingerprint not in ran or not lake.exists(table):
            raise ConfigError(f"analysis {analysis.name!r} has no results in {lake.uri} (no {table} rows of "
                              f"{analysis.fingerprint}; a changed analysis has a new fingerprint): "
                              "run `vidlake analyze SPEC` first")


def run_report(lake_uri: str, out: str, settings: Settings, spec: AnalysisFile | None = None,
               show: bool = True) -> ReportResult:
    """Write the report of ``spec``'s analyses (None: of what the lake holds) on the lake ``lake_uri`` to ``out``."""
    lake = Lake(lake_uri, settings.storage)
    check_report(lake, spec)
    try:
        storage_for(out, settings.storage)
    except ValueError as exc:
        raise ConfigError(f"--out {out}: {exc}") from None
    spec_json = json.dumps({"out": out, "spec": spec.model_dump(mode="json") if spec is not None else None})
    with RunRecord(lake, "report", spec_json=spec_json) as record:
        header = [("lake", lake.uri), ("generated at", datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")),
                  ("report run", record.run_id), ("vidlake", __version__)]
        pages = build_pages(lake, spec, Frames(lake, settings.storage), header)
        with tempfile.TemporaryDirectory(prefix="vidlake-report-") as tmp:
            written = write_report(pages, header, Path(tmp))  # the index last: it links only pages already there
            write_files(Path(tmp), written, out, settings.storage)
        result = ReportResult(
            run_id=record.run_id, out=out, pages=[w for w in written if w.endswith(".html")],
            plots={p.file: len(p.plots) for p in pages}, tables=[w for w in written if not w.endswith(".html")],
            seconds=record.seconds)
        record.finish("completed", metrics={"out": out, "pages": len(pages), "plots": result.plots,
                                            "tables": len(result.tables)})
    if show:
        _print(result)
    return result


def build_pages(lake: Lake, spec: AnalysisFile | None, frames: Frames, header: list[tuple[str, str]]) -> list[Page]:
    if spec is None:
        return lake_pages(lake, frames, header)
    return [(counts_page if isinstance(a, CountsAnalysis) else tracks_page)(lake, a, frames, header)
            for a in spec.analyses]


def _print(result: ReportResult) -> None:
    from vidlake.platform.runtime.progress import print_summary

    rows: list[tuple[str, object]] = [(page, f"{plots} plots") for page, plots in result.plots.items()]
    rows += [("data files (CSV and Parquet)", len(result.tables)), ("open", join_uri(result.out, "index.html")),
             ("seconds", result.seconds)]
    print_summary(f"report {result.run_id} -> {result.out}", rows)
