"""The report's figures, drawn with matplotlib and returned as PNG bytes.

Figures are ``matplotlib.figure.Figure`` objects rendered by the Agg canvas: no pyplot, no global state, safe
in threads. They are kept small (6 x 3 inches at 100 dpi) so a report of many deployments stays quick to make
and light to open. Frames are drawn in normalised coordinates (0..1 of the upright frame, y down), the
coordinates of ``x_norm``/``y_norm``, lines and zones, so the videos of one deployment share one picture
whatever their pixel sizes.
"""

from __future__ import annotations

import io
from typing import Sequence

import numpy as np
import polars as pl

from vidlake.analysis.report.frames import Frame
from vidlake.analysis.shapes import Line, Zone

__all__ = ["BIN_SECONDS", "counts_bars", "counts_over_time", "crossings", "heatmap", "hour_of_day", "trajectories",
           "zones"]

DPI = 100
BIN_SECONDS = {"minute": 60, "hour": 3600, "day": 86400}
_SERIES = ("detections", "individuals", "max_n")
_SERIES_LABEL = {"detections": "detections", "individuals": "individuals", "max_n": "MaxN"}


def counts_over_time(rows: pl.DataFrame, bin: str) -> bytes:
    """Detections, individuals and MaxN per bin of one deployment, a line per query; consecutive bins are
    joined, a stretch without footage breaks the line."""
    from matplotlib.dates import AutoDateLocator, ConciseDateFormatter
    from matplotlib.ticker import MaxNLocator

    fig, axes = _figure(6, 4.5, rows=3, sharex=True)
    for i, (query, group) in enumerate(_groups(rows, "query")):
        x, breaks = _broken_times(group, BIN_SECONDS[bin])
        for ax, column in zip(axes[:, 0], _SERIES):
            y = np.insert(group[column].to_numpy().astype(float), breaks, np.nan)
            ax.plot(x, y, marker="o", markersize=3, linewidth=1, color=_colour(i), label=query)
    for ax, column in zip(axes[:, 0], _SERIES):
        ax.set_ylabel(_SERIES_LABEL[column])
        ax.set_ylim(bottom=0)
        ax.yaxis.set_major_locator(MaxNLocator(integer=True, nbins=4))
        ax.grid(alpha=0.3)
    starts = rows["bin_start_local"].to_numpy()
    if len(starts):  # a bin's width of margin on both sides (one bin alone would span years)
        margin = np.timedelta64(BIN_SECONDS[bin], "s")
        axes[-1, 0].set_xlim(starts.min() - margin, starts.max() + margin)
    locator = AutoDateLocator()
    axes[-1, 0].xaxis.set_major_locator(locator)
    axes[-1, 0].xaxis.set_major_formatter(ConciseDateFormatter(locator))
    axes[0, 0].legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return _png(fig)


def hour_of_day(rows: pl.DataFrame, clock: str) -> bytes:
    """Detections per recorded hour by hour of day, bars per query; hours without footage have no bar."""
    fig, axes = _figure()
    ax = axes[0, 0]
    groups = _groups(rows, "query")
    width = 0.8 / max(1, len(groups))
    for i, (query, group) in enumerate(groups):
        ax.bar(group["hour"].to_numpy() - 0.4 + width * (i + 0.5), group["detections_per_hour"].to_numpy(),
               width=width, color=_colour(i), label=query)
    ax.set_xlim(-0.6, 23.6)
    ax.set_xticks(range(0, 24, 3))
    ax.set_xlabel(f"hour of day ({clock})")
    ax.set_ylabel("detections per hour")
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize="small")
    return _png(fig)


def heatmap(frame: Frame, grids: Sequence[tuple[str, np.ndarray]]) -> bytes:
    """Points per cell over the frame, a panel per query (cells without points are transparent)."""
    from matplotlib.colors import Normalize

    n = max(1, len(grids))
    fig, axes = _figure(min(12.0, n * (2.6 * frame.width / frame.height + 0.9)), 3, cols=n)
    for ax, (query, grid) in zip(axes[0], grids):
        _frame(ax, frame)
        shown = ax.imshow(np.ma.masked_equal(grid, 0), extent=(0, 1, 1, 0), cmap="plasma", alpha=0.75,
                          interpolation="nearest", aspect=frame.height / frame.width,
                          norm=Normalize(vmin=1, vmax=max(1.0, float(grid.max()))))
        fig.colorbar(shown, ax=ax, shrink=0.8, label="points per cell")
        ax.set_title(f"{query} ({int(grid.sum())} points)", fontsize="small")
    return _png(fig)


def trajectories(frame: Frame, samples: pl.DataFrame, lines: Sequence[Line], zones: Sequence[Zone],
                 max_gap_s: float | None) -> bytes:
    """Every track as a line over the frame (a dot where it starts; a gap longer than ``max_gap_s`` breaks it),
    with the counting lines (an arrow shows "in") and the zones."""
    from matplotlib.patches import Polygon

    fig, axes = _figure(min(9.0, 2.8 * frame.width / frame.height + 1.2), 3)
    ax = axes[0, 0]
    _frame(ax, frame)
    tracks = _groups(samples, "video_id", "query", "object_id")
    for i, (_, track) in enumerate(tracks):
        x, y, t = (track[c].to_numpy().astype(float) for c in ("x_norm", "y_norm", "t"))
        if max_gap_s is not None:
            breaks = np.flatnonzero(np.diff(t) > max_gap_s) + 1
            x, y = np.insert(x, breaks, np.nan), np.insert(y, breaks, np.nan)
        ax.plot(x, y, linewidth=1.2, color=_colour(i), alpha=0.9)
        ax.plot(x[:1], y[:1], marker="o", markersize=3, color=_colour(i))
    for zone in zones:
        ax.add_patch(Polygon(zone.polygon, closed=True, facecolor="#34c759", edgecolor="#34c759", alpha=0.25))
        cx, cy = np.mean(np.asarray(zone.polygon), axis=0)
        ax.annotate(zone.name, (cx, cy), color="white", fontsize="small", ha="center", weight="bold")
    for line in lines:
        (sx, sy), (ex, ey) = line.start, line.end
        ax.plot([sx, ex], [sy, ey], color="#ffcc00", linewidth=2.5)
        mx, my, length = (sx + ex) / 2, (sy + ey) / 2, np.hypot(ex - sx, ey - sy)
        nx, ny = (ey - sy) / length * 0.1, -(ex - sx) / length * 0.1  # towards the line's left: "in"
        ax.annotate("", xy=(mx + nx, my + ny), xytext=(mx, my),
                    arrowprops={"arrowstyle": "->", "color": "#ffcc00", "linewidth": 1.5})
        ax.text(mx + 1.4 * nx, my + 1.4 * ny, "in", color="#ffcc00", fontsize="small", weight="bold",
                ha="center", va="center")
        ax.text(sx + 0.15 * (ex - sx) - nx / 2, sy + 0.15 * (ey - sy) - ny / 2, line.name, color="#ffcc00",
                fontsize="small", weight="bold", ha="center", va="center")
    ax.set_title(f"{len(tracks)} track{'' if len(tracks) == 1 else 's'}", fontsize="small")
    return _png(fig)


def crossings(rows: pl.DataFrame) -> bytes:
    """In and out crossings per line (deployment / line), horizontal bars."""
    return _paired_bars(rows, [f"{d} / {n}" for d, n in zip(rows["deployment_id"], rows["line"])],
                        [("in", "in", "#0a84ff"), ("out", "out", "#ff9500")], "crossings")


def zones(rows: pl.DataFrame) -> bytes:
    """Visits and total dwell per zone (deployment / zone), side by side."""
    fig, axes = _figure(cols=2)
    labels = [f"{d} / {n}" for d, n in zip(rows["deployment_id"], rows["zone"])]
    at = np.arange(len(labels))
    for ax, (column, title, colour) in zip(axes[0], (("visits", "visits", "#0a84ff"), ("dwell_s", "dwell (s)",
                                                                                          "#34c759"))):
        ax.barh(at, rows[column].to_numpy(), height=0.6, color=colour)
        ax.set_yticks(at, labels, fontsize="small")
        ax.invert_yaxis()
        ax.set_xlabel(title)
        ax.grid(axis="x", alpha=0.3)
    axes[0, 1].set_yticks(at, [""] * len(labels))
    return _png(fig)


def counts_bars(rows: pl.DataFrame, label: str, value: str, ylabel: str) -> bytes:
    """``value`` per ``label`` (videos, deployments), a bar per query."""
    labels = rows[label].unique(maintain_order=True).to_list()
    fig, axes = _figure(6, 3)
    ax = axes[0, 0]
    at = np.arange(len(labels))
    groups = _groups(rows, "query")
    width = 0.8 / max(1, len(groups))
    for i, (query, group) in enumerate(groups):
        where = [labels.index(v) for v in group[label].to_list()]
        ax.bar(at[where] - 0.4 + width * (i + 0.5), group[value].fill_null(0).to_numpy(), width=width,
               color=_colour(i), label=query)
    ax.set_xticks(at, [_short(v) for v in labels], rotation=30, ha="right", fontsize="small")
    ax.set_ylabel(ylabel)
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize="small")
    return _png(fig)


def _paired_bars(rows: pl.DataFrame, labels: list[str], series: list[tuple[str, str, str]], xlabel: str) -> bytes:
    fig, axes = _figure(6, max(2.0, min(6.0, 0.5 * len(labels) + 1.2)))
    ax = axes[0, 0]
    at = np.arange(len(labels))
    height = 0.8 / len(series)
    for i, (column, name, colour) in enumerate(series):
        ax.barh(at - 0.4 + height * (i + 0.5), rows[column].to_numpy(), height=height, color=colour, label=name)
    ax.set_yticks(at, labels, fontsize="small")
    ax.invert_yaxis()
    ax.set_xlabel(xlabel)
    ax.grid(axis="x", alpha=0.3)
    ax.legend(fontsize="small")
    return _png(fig)


def _frame(ax, frame: Frame) -> None:
    """The picture (or a grey field of its shape) in normalised coordinates, y down, no ticks."""
    aspect = frame.height / frame.width
    picture = frame.image if frame.image is not None else np.full((frame.height, frame.width, 3), 200, np.uint8)
    ax.imshow(picture, extent=(0, 1, 1, 0), aspect=aspect, interpolation="bilinear")
    ax.set_xlim(0, 1)
    ax.set_ylim(1, 0)
    ax.set_xticks([])
    ax.set_yticks([])


def _broken_times(group: pl.DataFrame, width_s: int) -> tuple[np.ndarray, np.ndarray]:
    """The bins' local starts with a point inserted after each bin followed by a gap (where the caller puts
    NaN), and where those points go."""
    utc = group["bin_start_utc"].dt.epoch("s").to_numpy()
    local = group["bin_start_local"].to_numpy()
    breaks = np.flatnonzero(np.diff(utc) > 1.5 * width_s) + 1
    return np.insert(local, breaks, local[breaks - 1] + np.timedelta64(width_s, "s")), breaks


def _groups(rows: pl.DataFrame, *by: str) -> list[tuple[tuple, pl.DataFrame]]:
    parts = rows.partition_by(list(by), as_dict=True, maintain_order=True)
    return [(key if len(by) > 1 else key[0], part) for key, part in sorted(parts.items(), key=lambda kv: str(kv[0]))]


def _colour(i: int) -> tuple:
    import matplotlib

    return matplotlib.colormaps["tab10"](i % 10)


def _short(text: str, size: int = 24) -> str:
    return text if len(text) <= size else text[: size - 1] + "…"


def _figure(width: float = 6.0, height: float = 3.0, rows: int = 1, cols: int = 1, sharex: bool = False):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    return fig, fig.subplots(rows, cols, sharex=sharex, squeeze=False)


def _png(fig) -> bytes:
    out = io.BytesIO()
    fig.savefig(out, format="png", dpi=DPI)
    return out.getvalue()
