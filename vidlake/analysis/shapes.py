"""Counting lines and zones: where on the frame a tracks analysis counts crossings and visits.

Both are given per deployment in normalised coordinates (0..1 of the upright frame, origin top-left, y
down) and checked when an analysis file is read: a point off the frame, a line of one point, a zone that
is not a simple polygon fail before any work, with a message that names the line or zone.
"""

from __future__ import annotations

from typing import Annotated

import shapely
from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

__all__ = ["Line", "Zone"]

Point = tuple[float, float]
Name = Annotated[str, Field(min_length=1)]


def _check_in_frame(points: list[Point], what: str) -> None:
    for x, y in points:
        if not (0.0 <= x <= 1.0 and 0.0 <= y <= 1.0):  # also false for NaN
            raise ValueError(f"{what} has the point ({x}, {y}), out of 0..1: coordinates are fractions of the "
                             "frame's width and height")


class Line(BaseModel):
    """A counting line in normalised coordinates (0..1 of the upright frame, origin top-left, y down).

    Direction follows supervision's ``LineZone``: stand on ``start`` facing ``end`` *as the frame is shown
    on screen*; crossing from your right-hand side to your left-hand side is ``in``, the other way ``out``.
    In numbers, with c = (end - start) x (p - start) = dx * (py - sy) - dy * (px - sx) in image
    coordinates, c > 0 on the right-hand side and c < 0 on the left: ``in`` is c going from + to -.
    Examples: a line from the top (0.5, 0) to the bottom (0.5, 1) counts an object moving rightwards as
    ``in``; a line from (0, 0.5) to (1, 0.5) counts an object moving up the frame as ``in``. Swap start and
    end to swap the directions.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: Name
    start: Point
    end: Point

    @model_validator(mode="after")
    def _check(self) -> "Line":
        _check_in_frame([self.start, self.end], f"line {self.name!r}")
        if self.start == self.end:
            raise ValueError(f"line {self.name!r} has start == end {self.start}: a line needs two distinct points")
        return self

    @property
    def geometry(self) -> shapely.LineString:
        return shapely.LineString([self.start, self.end])


class Zone(BaseModel):
    """A zone: a simple polygon (no holes) in normalised coordinates, 3 or more points, given in either
    order; closing the ring by repeating the first point is optional."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: Name
    polygon: list[Point]

    @field_validator("polygon")
    @classmethod
    def _check(cls, points: list[Point], info: ValidationInfo) -> list[Point]:
        zone = f"zone {info.data.get('name')!r}"
        if len(set(points)) < 3:
            raise ValueError(f"{zone} needs at least 3 distinct points, got {len(set(points))}: {points}")
        _check_in_frame(points, zone)
        polygon = shapely.Polygon(points)
        if polygon.convex_hull.area == 0:
            raise ValueError(f"{zone} has zero area: its points lie on one line: {points}")
        if not polygon.is_valid:  # an area but not a simple polygon: the outline crosses or touches itself
            reason = shapely.is_valid_reason(polygon)
            raise ValueError(f"{zone} is self-intersecting or otherwise not a simple polygon ({reason}): {points}")
        return points

    @property
    def geometry(self) -> shapely.Polygon:
        return shapely.Polygon(self.polygon)
