"""Track geometry: statistics per track, line crossings and zone visits, vectorised over track samples.

Input is one row per track sample (a ``pyarrow.Table`` or a polars DataFrame) with the columns of
``SAMPLE_COLUMNS``: a track is (deployment_id, video_id, query, object_id); ``t`` is seconds in the video,
``t_utc`` the same instant on the wall clock (null when the video has no known start); ``x_norm``/``y_norm``
are 0..1 of the upright frame (origin top-left, y down) and ``x``/``y`` the same point in pixels. Rows may
come in any order: every function sorts once by track and time, then works on whole columns (numpy on the
sorted arrays, with the first row of each track as the group boundary). Python loops run over deployments
and lines or zones only, never over rows.

Lines and zones are given per deployment in normalised coordinates. Shapely evaluates the geometric
predicates (does a step meet a line segment; is a point in a polygon); numpy narrows down what to ask it
(steps whose ends lie on opposite sides of a line, by the sign of a cross product; points within a zone's
bounding box).

Every function returns a table with a fixed schema (``TRACK_STATS``, ``LINE_CROSSINGS``, ``ZONE_VISITS``),
sorted by its key columns; empty input gives an empty table with that schema.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc
import shapely

from vidlake.analysis.shapes import Line, Zone
from vidlake.errors import ConfigError, LakeError
from vidlake.platform.lake.schemas import LINE_CROSSINGS, TRACK_STATS, ZONE_VISITS

__all__ = [
    "SAMPLE_COLUMNS", "TRACK_KEYS", "Samples", "line_crossings", "load_samples", "track_stats", "zone_visits",
]

TRACK_KEYS = ("deployment_id", "video_id", "query", "object_id")
SAMPLE_COLUMNS = TRACK_KEYS + ("t", "t_utc", "x_norm", "y_norm", "x", "y")

_UTC = pa.timestamp("us", tz="UTC")

_SAMPLE_SCHEMA = pa.schema(
    [TRACK_STATS.field(k) for k in TRACK_KEYS]
    + [pa.field("t", pa.float64()), pa.field("t_utc", _UTC)]
    + [pa.field(c, pa.float64()) for c in ("x_norm", "y_norm", "x", "y")]
)


@dataclass(frozen=True)
class Samples:
    """Track samples sorted by track, then time, as numpy columns, with the way back to the input's rows."""

    table: pa.Table  # the input's sample columns, typed, in the input's order
    order: np.ndarray  # input row of each sorted position
    first: np.ndarray  # True on the first sample of each track
    deployments: dict[str, slice]  # sorted positions of each deployment: contiguous, deployment sorts first
    t: np.ndarray
    utc: np.ndarray  # int64 microseconds since the epoch, 0 where null
    utc_null: np.ndarray
    x_norm: np.ndarray
    y_norm: np.ndarray
    x: np.ndarray  # NaN where null
    y: np.ndarray

    def keys(self, rows: np.ndarray, columns: tuple[str, ...] = TRACK_KEYS) -> pa.Table:
        return self.table.select(list(columns)).take(self.order[rows])


def _ordered_codes(column: pa.ChunkedArray) -> tuple[np.ndarray, int]:
    """Integers that sort as the column's values do (strings by their UTF-8 bytes), and how many distinct
    codes they may take. Strings are dictionary-encoded: a hash pass, then only the distinct values sorted."""
    if len(column) == 0:
        return np.zeros(0, np.int64), 1
    if pa.types.is_string(column.type):
        encoded = pc.dictionary_encode(column).unify_dictionaries()
        dictionary = encoded.chunks[0].dictionary
        rank = np.empty(len(dictionary), np.int64)
        rank[pc.sort_indices(dictionary).to_numpy()] = np.arange(len(dictionary))
        indices = np.concatenate([chunk.indices.to_numpy() for chunk in encoded.chunks])
        return rank[indices], len(dictionary)
    values = column.to_numpy().astype(np.int64)
    low = values.min()
    return values - low, int(values.max() - low) + 1


def _track_codes(table: pa.Table) -> tuple[np.ndarray, np.ndarray]:
    """One int64 per row that sorts as (deployment_id, video_id, query, object_id) do: mixed-radix digits,
    re-numbered densely in the rare case the next digit would overflow. Also the deployment's own code."""
    digits = [_ordered_codes(table[name]) for name in TRACK_KEYS]
    code, size = np.zeros(table.num_rows, np.int64), 1
    for part, count in digits:
        if size * count >= 2**62:
            distinct, code = np.unique(code, return_inverse=True)
            size = len(distinct)
        code, size = code * count + part, size * count
    return code, digits[0][0]


def load_samples(samples: pa.Table | pl.DataFrame) -> Samples:
    """Check and sort the samples (once: the three analyses take the result as well as a table). Fails
    on missing columns, missing values where one is needed, and two
    samples of one track at the same time (they mix runs)."""
    table = samples.to_arrow() if isinstance(samples, pl.DataFrame) else samples
    missing = [c for c in SAMPLE_COLUMNS if c not in table.column_names]
    if missing:
        raise LakeError(f"track samples lack the columns {missing}; they need {list(SAMPLE_COLUMNS)}")
    try:
        table = table.select(list(SAMPLE_COLUMNS)).cast(_SAMPLE_SCHEMA)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as error:
        raise LakeError(f"track samples do not fit the schema {_SAMPLE_SCHEMA}: {error}") from None
    floats = {c: table[c].to_numpy() for c in ("t", "x_norm", "y_norm", "x", "y")}
    lacking = {c: table[c].null_count for c in TRACK_KEYS} | {c: int(np.isnan(floats[c]).sum())
                                                              for c in ("t", "x_norm", "y_norm")}
    if any(lacking.values()):
        bad = {c: n for c, n in lacking.items() if n}
        raise LakeError(f"track samples lack values (rows with null or NaN, per column: {bad}); drop those rows first")

    code, deployment = _track_codes(table)
    order = pl.DataFrame({"code": code, "t": floats["t"]}).select(pl.arg_sort_by(["code", "t"]))
    order = order.to_series().to_numpy().astype(np.int64)
    code, t = code[order], floats["t"][order]
    first = np.ones(len(t), bool)
    first[1:] = code[1:] != code[:-1]
    duplicate = np.flatnonzero(~first[1:] & (t[1:] == t[:-1]))
    if len(duplicate):
        track = table.select(list(TRACK_KEYS)).take(order[duplicate[:1]]).to_pylist()[0]
        raise LakeError(f"track {track} has two samples at t={t[duplicate[0]]}: the samples mix runs; select one "
                        "task_key before the analysis")

    deployment = deployment[order]
    starts = np.flatnonzero(np.diff(deployment, prepend=-1))
    names = table["deployment_id"].take(order[starts]).to_pylist()
    ends = np.append(starts[1:], len(t))
    utc = table["t_utc"].cast(pa.int64())
    return Samples(
        table=table, order=order, first=first,
        deployments={name: slice(int(a), int(b)) for name, a, b in zip(names, starts, ends)},
        t=t, utc=pc.fill_null(utc, 0).to_numpy()[order], utc_null=utc.is_null().to_numpy()[order],
        **{c: floats[c][order] for c in ("x_norm", "y_norm", "x", "y")},
    )


def _continuous(first: np.ndarray, t: np.ndarray, max_gap_s: float | None) -> np.ndarray:
    """True where the step from the previous row is inside one track and not across a gap > max_gap_s."""
    step = ~first
    if max_gap_s is not None:
        step &= np.diff(t, prepend=t[:1]) <= max_gap_s
    return step


def track_stats(samples: pa.Table | pl.DataFrame | Samples, px_per_m: dict[str, float] | None = None,
                max_gap_s: float | None = None) -> pa.Table:
    """One row per track (schema ``TRACK_STATS``): sample count, time span, path length and speeds.

    A step is the move between consecutive samples of a track. Path length sums the Euclidean step
    lengths in normalised units (a step across the whole frame width is 1) and, for deployments with a
    calibration in ``px_per_m`` (pixels per metre of the upright frame), in metres from the pixel
    coordinates; other deployments get nulls there. A step over a gap longer than ``max_gap_s`` (the
    object was away, or unseen) adds neither length nor speed: mean speed is the path length over the time
    spent on the counted steps, null when that is 0 (a single sample); max speed is the fastest counted
    step. ``duration_s`` is the whole span, gaps included.
    """
    _check_gap(max_gap_s)
    px_per_m = dict(px_per_m or {})
    for deployment, scale in px_per_m.items():
        if not (scale > 0 and np.isfinite(scale)):
            raise ConfigError(f"px_per_m[{deployment!r}] must be a positive number of pixels per metre, got {scale}")
    s = samples if isinstance(samples, Samples) else load_samples(samples)
    if len(s.t) == 0:
        return TRACK_STATS.empty_table()
    counted = _continuous(s.first, s.t, max_gap_s)
    starts = np.flatnonzero(s.first)
    ends = np.append(starts[1:], len(s.t)) - 1
    dt = np.diff(s.t, prepend=s.t[:1])
    moving_s = np.add.reduceat(np.where(counted, dt, 0.0), starts)

    def path_and_speeds(x: np.ndarray, y: np.ndarray) -> list[np.ndarray]:
        step = np.hypot(np.diff(x, prepend=x[:1]), np.diff(y, prepend=y[:1]))
        path = np.add.reduceat(np.where(counted, step, 0.0), starts)
        with np.errstate(divide="ignore", invalid="ignore"):
            mean = np.where(moving_s > 0, path / moving_s, np.nan)
            fastest = np.maximum.reduceat(np.where(counted, step / np.where(counted, dt, 1.0), -1.0), starts)
        return [path, mean, np.where(fastest >= 0, fastest, np.nan)]

    scale = np.full(len(s.t), np.nan)
    for deployment, rows in s.deployments.items():
        scale[rows] = px_per_m.get(deployment, np.nan)
    scale = scale[starts]
    calibrated = ~np.isnan(scale)
    metres = [np.full(len(starts), np.nan)] * 3
    if calibrated.any():
        unplaced = np.repeat(calibrated, np.diff(np.append(starts, len(s.t)))) & (np.isnan(s.x) | np.isnan(s.y))
        if unplaced.any():
            raise LakeError(f"track {s.keys(np.flatnonzero(unplaced)[:1]).to_pylist()[0]} of a calibrated deployment "
                            "has samples without pixel x/y")
        metres = [values / scale for values in path_and_speeds(s.x, s.y)]
    table = s.keys(starts)
    columns = [
        np.diff(np.append(starts, len(s.t))), s.t[starts], s.t[ends],
        _utc_array(s.utc[starts], s.utc_null[starts]), _utc_array(s.utc[ends], s.utc_null[ends]),
        s.t[ends] - s.t[starts], *path_and_speeds(s.x_norm, s.y_norm), *metres,
    ]
    for field, values in zip(list(TRACK_STATS)[len(TRACK_KEYS):], columns):
        table = table.append_column(field, _arrow(values, field.type))
    return table


def _arrow(values: np.ndarray | pa.Array, type: pa.DataType) -> pa.Array:
    """An Arrow column; NaN in a float column becomes null (undefined, not a number)."""
    if isinstance(values, pa.Array):
        return values.cast(type)
    mask = np.isnan(values) if values.dtype.kind == "f" else None
    return pa.array(values, type, mask=mask)


def _utc_array(micros: np.ndarray, null: np.ndarray) -> pa.Array:
    return pa.array(micros, pa.int64(), mask=null).cast(_UTC)


def _check_gap(max_gap_s: float | None) -> None:
    if max_gap_s is not None and not (max_gap_s > 0 and np.isfinite(max_gap_s)):
        raise ConfigError(f"max_gap_s must be a positive number of seconds, got {max_gap_s}")


def _check_names(shapes: dict[str, list[Line]] | dict[str, list[Zone]], kind: str) -> None:
    for deployment, items in shapes.items():
        names = [item.name for item in items]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ConfigError(f"deployment {deployment!r} has two {kind}s named {twice}: names must be unique")


def _events(s: Samples, rows: np.ndarray, deployment: str, shape: tuple[str, str],
            columns: dict[str, np.ndarray | pa.Array], schema: pa.Schema) -> pa.Table:
    """Events at the given sorted rows of one deployment: deployment, the shape's column (line or zone) and
    name, the track's keys, then the event's own columns."""
    keys = s.keys(rows, TRACK_KEYS[1:])
    table = pa.table({"deployment_id": pa.repeat(pa.scalar(deployment, pa.string()), len(rows)),
                      shape[0]: pa.repeat(pa.scalar(shape[1], pa.string()), len(rows))})
    for name in keys.column_names:
        table = table.append_column(name, keys[name])
    for name, values in columns.items():
        table = table.append_column(name, _arrow(values, schema.field(name).type))
    return table


def _concat(parts: list[pa.Table], schema: pa.Schema) -> pa.Table:
    """Parts made deployment by deployment (sorted), shape by shape (sorted by name), each in track and time
    order: their concatenation is sorted by the schema's key columns without sorting again."""
    return pa.concat_tables(parts).cast(schema) if parts else schema.empty_table()


def line_crossings(samples: pa.Table | pl.DataFrame | Samples, lines: dict[str, list[Line]]) -> pa.Table:
    """One row per crossing of a line by a track (schema ``LINE_CROSSINGS``); ``lines`` per deployment_id.

    A crossing is a step between consecutive samples of a track whose segment meets the line segment
    (the line's end points included) and whose ends lie strictly on opposite sides of the line. Direction
    as in ``Line``. A sample exactly on the line (or on its extension) keeps the side the track was on
    before: an object that stops on the line and goes back is not counted, one that stops on it and goes
    on is counted once, at the time of the sample on the line. Samples before a track's first one off
    the line have no side and start no crossing. The time is interpolated linearly along the step at the
    crossing point (``t_utc`` likewise, null when either sample's is unknown). Gaps between samples do
    not matter here: an object seen on one side and later on the other crossed in between.
    Rows are sorted by deployment_id, line, video_id, query, object_id, t.
    """
    _check_names(lines, "line")
    s = samples if isinstance(samples, Samples) else load_samples(samples)
    parts = []
    for deployment, rows in s.deployments.items():
        x, y, t, first = s.x_norm[rows], s.y_norm[rows], s.t[rows], s.first[rows]
        utc, utc_null = s.utc[rows], s.utc_null[rows]
        index = np.arange(len(t))
        track_start = np.maximum.accumulate(np.where(first, index, 0))
        for line in sorted(lines.get(deployment, []), key=lambda line: line.name):
            (sx, sy), (ex, ey) = line.start, line.end
            cross = (ex - sx) * (y - sy) - (ey - sy) * (x - sx)  # > 0 right of the line, < 0 left
            side = np.sign(cross).astype(np.int8)
            # the side of the last sample off the line, carried forward within the track (0 before any)
            last_off = np.maximum.accumulate(np.where(side != 0, index, -1))
            held = np.where(last_off >= track_start, side[np.maximum(last_off, 0)], 0)
            before = np.concatenate([[0], held[:-1]])
            # steps whose ends are on opposite sides of the (infinite) line; shapely decides which of them
            # meet the line segment itself
            end = np.flatnonzero(~first & (side != 0) & (before != 0) & (side != before))
            steps = shapely.linestrings(np.stack([x[end - 1], y[end - 1], x[end], y[end]], axis=1).reshape(-1, 2, 2))
            geometry = line.geometry
            shapely.prepare(geometry)
            end = end[shapely.intersects(geometry, steps)]
            # the cross product is affine along a step, so its zero lies at this fraction of the step (0 when
            # the step starts on the line); exact, and far cheaper than building intersection points
            fraction = cross[end - 1] / (cross[end - 1] - cross[end])
            crossing_utc = utc[end - 1] + np.round(fraction * (utc[end] - utc[end - 1])).astype(np.int64)
            parts.append(_events(s, rows.start + end, deployment, ("line", line.name), {
                "t": t[end - 1] + fraction * (t[end] - t[end - 1]),
                "t_utc": _utc_array(crossing_utc, utc_null[end - 1] | utc_null[end]),
                "direction": np.where(before[end] > 0, "in", "out"),
            }, LINE_CROSSINGS))
    return _concat(parts, LINE_CROSSINGS)


def _inside(zone: Zone, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Which points lie in the zone, its boundary included (shapely.intersects_xy; contains_xy would leave
    the boundary out). Points outside the zone's bounding box are settled by numpy without asking shapely."""
    geometry = zone.geometry
    shapely.prepare(geometry)
    x0, y0, x1, y1 = geometry.bounds
    candidates = np.flatnonzero((x >= x0) & (x <= x1) & (y >= y0) & (y <= y1))
    inside = np.zeros(len(x), dtype=bool)
    inside[candidates] = shapely.intersects_xy(geometry, x[candidates], y[candidates])
    return inside


def zone_visits(samples: pa.Table | pl.DataFrame | Samples, zones: dict[str, list[Zone]],
                max_gap_s: float | None = None) -> pa.Table:
    """One row per visit of a track to a zone (schema ``ZONE_VISITS``); ``zones`` per deployment_id.

    A visit is a run of consecutive samples of a track inside the zone; a point on the zone's boundary
    counts as inside. A gap longer than ``max_gap_s`` between two inside samples ends the visit (the object
    was away); without ``max_gap_s`` no gap does. ``enter_t``/``exit_t`` are the first and last sample
    inside.

    ``dwell_s`` follows the midpoint rule: the visit begins halfway between the sample before it and its
    first sample, and ends halfway between its last sample and the next, so each sample stands for the
    time nearer to it than to its neighbours. That is how behaviour-lab tracking software measures time
    in a zone (samples inside times the sampling interval), so a visit seen on one sample of a track
    sampled every 0.5 s dwells 0.5 s, not 0, and a lab's totals match. Where there is no neighbour to go
    halfway to (the track starts or ends, or the neighbour is across a gap longer than ``max_gap_s``) the
    visit's edge is its own sample: nothing is added for time in which the object was not seen.
    Rows are sorted by deployment_id, zone, video_id, query, object_id, enter_t.
    """
    _check_gap(max_gap_s)
    _check_names(zones, "zone")
    s = samples if isinstance(samples, Samples) else load_samples(samples)
    parts = []
    for deployment, rows in s.deployments.items():
        t, utc, utc_null = s.t[rows], s.utc[rows], s.utc_null[rows]
        continuous = _continuous(s.first[rows], t, max_gap_s)
        half_step = np.diff(t, prepend=t[:1]) / 2
        for zone in sorted(zones.get(deployment, []), key=lambda zone: zone.name):
            inside = _inside(zone, s.x_norm[rows], s.y_norm[rows])
            # a row continues the visit of the row before when both are inside and no long gap parts them
            joined = inside & continuous & np.concatenate([[False], inside[:-1]])
            enter = np.flatnonzero(inside & ~joined)
            leave = np.flatnonzero(inside & ~np.append(joined[1:], False))
            after = np.minimum(leave + 1, len(t) - 1)
            pad_before = np.where(continuous[enter], half_step[enter], 0.0)
            pad_after = np.where((leave + 1 < len(t)) & continuous[after], half_step[after], 0.0)
            parts.append(_events(s, rows.start + enter, deployment, ("zone", zone.name), {
                "enter_t": t[enter], "exit_t": t[leave],
                "enter_utc": _utc_array(utc[enter], utc_null[enter]),
                "exit_utc": _utc_array(utc[leave], utc_null[leave]),
                "dwell_s": t[leave] - t[enter] + pad_before + pad_after,
                "samples": leave - enter + 1,
            }, ZONE_VISITS))
    return _concat(parts, ZONE_VISITS)
