"""Reports: self-contained HTML pages with plots of the lake's analyses, their numbers beside them as CSV and
Parquet (``vidlake report``, vidlake/jobs/report.py; docs/reports.md).

    data.py            the numbers, read from the lake (Polars)
    frames.py          representative frames of the footage, decoded upright
    plots.py           the matplotlib figures, as PNG
    analysis_pages.py  a counts or tracks analysis' page
    lake_pages.py      the pages of a report without an analysis file
    page.py            what a page holds, and writing a report to a folder
    html.py            the pages' HTML
"""

from vidlake.analysis.report.analysis_pages import counts_page, tracks_page
from vidlake.analysis.report.frames import Frame, Frames
from vidlake.analysis.report.lake_pages import lake_pages
from vidlake.analysis.report.page import Page, Plot, Section, Table, write_report

__all__ = ["Frame", "Frames", "Page", "Plot", "Section", "Table", "counts_page", "lake_pages", "tracks_page",
           "write_report"]
