"""What a report page holds (plots, tables, notes in sections, under a short header) and how a report is
written to a folder: each page as one HTML file, its numbers beside it as CSV and Parquet.

    <folder>/index.html                 links every page
    <folder>/<page>.html                self-contained: CSS and plots (PNG) inline, no external URL
    <folder>/<page>/<table>.csv         the numbers of each plot and table of the page
    <folder>/<page>/<table>.parquet     the same, with the lake's types
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Union

import polars as pl

__all__ = ["Page", "Plot", "Section", "Table", "write_report"]


@dataclass
class Table:
    """Numbers written beside the page (``<page>/<name>.csv`` and ``.parquet``); shown on the page as an HTML
    table when it is also one of a section's blocks."""

    name: str
    title: str
    caption: str
    frame: pl.DataFrame


@dataclass
class Plot:
    kind: str  # counts_over_time, hour_of_day, heatmap, trajectories, crossings, zones, counts_per_video, ...
    title: str
    caption: str
    png: bytes
    data: str  # the Table holding its numbers
    attrs: dict[str, str] = field(default_factory=dict)  # data-* attributes: deployment, video


Block = Union[Plot, Table, str]  # a str is a note


@dataclass
class Section:
    title: str
    blocks: list[Block] = field(default_factory=list)
    attrs: dict[str, str] = field(default_factory=dict)


@dataclass
class Page:
    name: str  # file stem
    title: str
    summary: str  # one line on the index
    header: list[tuple[str, str]]  # (label, value) under the title
    sections: list[Section] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)

    @property
    def file(self) -> str:
        return f"{self.name}.html"

    @property
    def plots(self) -> list[Plot]:
        return [b for s in self.sections for b in s.blocks if isinstance(b, Plot)]

    def table(self, table: Table) -> Table:
        """Keep ``table`` as one of the page's data files, and return it (to show it in a section too)."""
        if any(t.name == table.name for t in self.tables):
            raise ValueError(f"page {self.name!r} has two tables named {table.name!r}")
        self.tables.append(table)
        return table


def write_report(pages: list[Page], header: list[tuple[str, str]], folder: Path) -> list[str]:
    """Write the pages, their tables and the index into ``folder``; the paths written, relative to it."""
    from vidlake.analysis.report.html import render_index, render_page

    written = []
    for page in pages:
        (folder / page.file).write_text(render_page(page), encoding="utf-8")
        written.append(page.file)
        if page.tables:
            (folder / page.name).mkdir(parents=True, exist_ok=True)
        for table in page.tables:
            stem = folder / page.name / table.name
            table.frame.write_csv(stem.with_suffix(".csv"))
            table.frame.write_parquet(stem.with_suffix(".parquet"))
            written += [f"{page.name}/{table.name}.csv", f"{page.name}/{table.name}.parquet"]
    (folder / "index.html").write_text(render_index(pages, header), encoding="utf-8")
    return [*written, "index.html"]  # the index last: copied in this order, it links only pages already there
