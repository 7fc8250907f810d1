"""Decoding: frames at planned times, upright and resized, with their stream timestamps.

Two readers share one contract (:class:`FrameBatch`): PyAV (the default, faster: it skips
non-reference frames nobody asked for) and decord (the fallback, local files only).
"""

from vidlake.platform.media.decord_reader import read_decord
from vidlake.platform.media.frames import FrameBatch, nearest_indices, output_size, quarter_turns, upright
from vidlake.platform.media.pyav_reader import read_pyav

__all__ = ["FrameBatch", "nearest_indices", "output_size", "quarter_turns", "read_decord", "read_pyav", "upright"]
