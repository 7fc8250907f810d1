"""Appearance descriptors: what a pointed object looks like, from the pixels around its points."""

from __future__ import annotations

import numpy as np

from vidlake.evaluation.world import COLOURS, covers
from vidlake.operators.appearance import appearance_distance, describe_objects, pack, thumbnails
from vidlake.operators.parse import ParseOutput


def _frame(objects, size=(240, 320), seed=0):
    """A textured background with shapes drawn on it: objects = [(shape, colour, size, x, y)]."""
    h, w = size
    rng = np.random.default_rng(seed)
    frame = (rng.integers(90, 150, size=(h, w, 3))).astype(np.uint8)
    yy, xx = np.mgrid[0:h, 0:w] + 0.5
    for shape, colour, side, x, y in objects:
        frame[covers(shape, side, x, y, xx, yy)] = COLOURS[colour]
    return frame


def _describe(objects, seed=0):
    frame = _frame(objects, seed=seed)
    samples = [{"t": 1.0, "object_id": i + 1, "x_norm": x / 320, "y_norm": y / 240}
               for i, (*_, x, y) in enumerate(objects)]
    return {d["object_id"]: d["vector"] for d in describe_objects(thumbnails(frame[None]), [1.0], samples)}


def test_thumbnails_keep_a_short_side_of_96():
    frames = np.zeros((3, 378, 504, 3), np.uint8)
    assert thumbnails(frames).shape == (3, 96, 128, 3)
    small = np.zeros((2, 64, 80, 3), np.uint8)
    assert thumbnails(small).shape == small.shape  # never enlarged


def test_one_object_in_two_places_looks_alike_and_other_objects_do_not():
    a = _describe([("circle", "red", 30, 80, 60)], seed=1)[1]
    b = _describe([("circle", "red", 30, 250, 180)], seed=2)[1]  # moved, other background
    blue = _describe([("circle", "blue", 30, 80, 60)])[1]
    small = _describe([("circle", "red", 14, 80, 60)])[1]
    square = _describe([("square", "red", 30, 80, 60)])[1]
    same = appearance_distance(a, b)
    assert same < 0.2
    assert appearance_distance(a, blue) > 0.6
    assert appearance_distance(a, small) > same and appearance_distance(a, square) > same


def test_points_off_the_sampled_frames_are_not_described():
    frame = _frame([("circle", "red", 30, 80, 60)])
    samples = [{"t": 1.5, "object_id": 1, "x_norm": 0.25, "y_norm": 0.25}, {"t": 1.0, "object_id": 2, "x_norm": None}]
    assert describe_objects(frame[None], [1.0], samples) == []


def test_parse_describes_the_pointed_objects_and_drops_the_thumbnails():
    frame = _frame([("circle", "red", 30, 80, 60), ("square", "blue", 40, 240, 160)])
    row = {"status": "ok", "task": "track", "raw_text": '<tracks coords="0.0 1 250 250 2 750 667">shapes</tracks>',
           "width": 320, "height": 240, "rotation": 0, "time_offset_s": 4.0, "timestamps_s": [4.0],
           "start_s": 4.0, "end_s": 8.0, "thumbs": pack(thumbnails(frame[None]))}
    out = ParseOutput()(row)
    assert "thumbs" not in out
    looks = {d["object_id"]: d["vector"] for d in out["appearance"]}
    red = _describe([("circle", "red", 30, 80, 60)])[1]
    assert appearance_distance(looks[1], red) < 0.2 < appearance_distance(looks[2], red)
