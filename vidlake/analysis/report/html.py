"""HTML of report pages: self-contained (CSS inline, plots as inline base64 PNG), no script, no external URL.

Every text from the lake or the spec is escaped. A plot is a ``<figure class="plot">`` with ``data-plot`` (its
kind) and the ``data-*`` attributes of what it shows (deployment, video); a table shows at most
``MAX_ROWS`` rows (all of them are in its CSV and Parquet files, linked under it).
"""

from __future__ import annotations

import base64
import struct
from datetime import date, datetime
from html import escape
from typing import Any

from vidlake.analysis.report.page import Page, Plot, Section, Table

__all__ = ["MAX_ROWS", "render_index", "render_page"]

MAX_ROWS = 200

_CSS = """
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: #1d1d1f; margin: 0;
       background: #fafafa; }
header, main, footer { max-width: 1000px; margin: 0 auto; padding: 0 16px; }
header { padding-top: 12px; border-bottom: 1px solid #ddd; }
h1 { font-size: 22px; margin: 6px 0; } h2 { font-size: 18px; margin: 24px 0 8px; } h3 { font-size: 15px; }
dl.meta { display: grid; grid-template-columns: max-content 1fr; gap: 2px 12px; margin: 8px 0 12px; }
dl.meta dt { color: #666; } dl.meta dd { margin: 0; font-family: ui-monospace, monospace; font-size: 13px;
       overflow-wrap: anywhere; }
nav a, a { color: #0a64c8; }
figure.plot { margin: 12px 0 20px; background: #fff; border: 1px solid #e3e3e3; padding: 8px; }
figure.plot img { max-width: 100%; height: auto; display: block; }
figcaption { color: #444; font-size: 13px; margin-top: 6px; }
.data { white-space: nowrap; }
.note { color: #6b4e00; background: #fff7e0; border-left: 3px solid #e0b000; padding: 6px 10px; }
div.table { overflow-x: auto; margin: 12px 0 20px; }
table { border-collapse: collapse; font-size: 12px; background: #fff; }
th, td { border: 1px solid #e3e3e3; padding: 3px 6px; text-align: left; white-space: nowrap; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
th { background: #f0f0f0; }
ul.pages li { margin: 6px 0; }
footer { color: #888; font-size: 12px; padding: 24px 16px; }
"""


def render_page(page: Page) -> str:
    body = [f'<header><nav><a href="index.html">All pages</a></nav><h1>{escape(page.title)}</h1>',
            _meta(page.header), "</header><main>"]
    body += [_section(page, s) for s in page.sections]
    body.append("</main>")
    return _document(page.title, "\n".join(body))


def render_index(pages: list[Page], header: list[tuple[str, str]]) -> str:
    items = []
    for page in pages:
        plots, tables = len(page.plots), len(page.tables)
        items.append(f'<li><a href="{escape(page.file)}">{escape(page.title)}</a>: {escape(page.summary)} '
                     f'<span class="count">({plots} plots, {tables} tables)</span></li>')
    body = (f"<header><h1>vidlake report</h1>{_meta(header)}</header><main><h2>Pages</h2>"
            f'<ul class="pages">{"".join(items)}</ul>'
            "<p>Each page's numbers are beside it, as CSV and Parquet, in the folder of its name.</p></main>")
    return _document("vidlake report", body)


def _document(title: str, body: str) -> str:
    return (f'<!doctype html>\n<html lang="en"><head><meta charset="utf-8"><title>{escape(title)}</title>'
            f'<meta name="viewport" content="width=device-width, initial-scale=1"><style>{_CSS}</style></head>'
            f"<body>{body}<footer>Made by <code>vidlake report</code>; plots by matplotlib.</footer></body></html>\n")


def _meta(rows: list[tuple[str, str]]) -> str:
    return '<dl class="meta">' + "".join(f"<dt>{escape(k)}</dt><dd>{escape(v)}</dd>" for k, v in rows) + "</dl>"


def _section(page: Page, section: Section) -> str:
    parts = [f"<section{_attrs(section.attrs)}><h2>{escape(section.title)}</h2>"]
    for block in section.blocks:
        if isinstance(block, Plot):
            parts.append(_plot(page, block))
        elif isinstance(block, Table):
            parts.append(_table(page, block))
        else:
            parts.append(f'<p class="note">{escape(block)}</p>')
    parts.append("</section>")
    return "\n".join(parts)


def _plot(page: Page, plot: Plot) -> str:
    width, height = struct.unpack(">II", plot.png[16:24])  # the PNG's IHDR
    src = "data:image/png;base64," + base64.b64encode(plot.png).decode("ascii")
    attrs = _attrs({"plot": plot.kind, **plot.attrs})
    return (f'<figure class="plot"{attrs}><img src="{src}" width="{width}" height="{height}" '
            f'alt="{escape(plot.title)}"><figcaption><b>{escape(plot.title)}.</b> {escape(plot.caption)} '
            f"{_links(page, plot.data)}</figcaption></figure>")


def _table(page: Page, table: Table) -> str:
    frame = table.frame
    head = "".join(f"<th>{escape(c)}</th>" for c in frame.columns)
    rows = []
    for row in frame.head(MAX_ROWS).iter_rows():
        cells = "".join(f'<td class="num">{_cell(v)}</td>' if isinstance(v, (int, float)) and not isinstance(v, bool)
                        else f"<td>{_cell(v)}</td>" for v in row)
        rows.append(f"<tr>{cells}</tr>")
    more = (f"<p>The first {MAX_ROWS} of {frame.height} rows; every row is in the files.</p>"
            if frame.height > MAX_ROWS else "")
    empty = "<p>No rows.</p>" if frame.is_empty() else ""
    return (f'<div class="table" data-table="{escape(table.name)}"><h3>{escape(table.title)}</h3>'
            f"<p>{escape(table.caption)} {_links(page, table.name)}</p>"
            f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>{more}{empty}</div>")


def _links(page: Page, table: str) -> str:
    stem = escape(f"{page.name}/{table}")
    return (f'<span class="data">Numbers: <a href="{stem}.csv">CSV</a> · '
            f'<a href="{stem}.parquet">Parquet</a></span>')


def _cell(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.4g}" if abs(value) < 1e5 else f"{value:.0f}"
    if isinstance(value, datetime):
        text = value.strftime("%Y-%m-%d %H:%M:%S")
        return escape(text + (" UTC" if value.tzinfo is not None else ""))
    if isinstance(value, date):
        return value.isoformat()
    return escape(str(value))


def _attrs(attrs: dict[str, str]) -> str:
    return "".join(f' data-{escape(k)}="{escape(str(v))}"' for k, v in attrs.items())
