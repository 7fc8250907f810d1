"""Evaluation: a synthetic world with exact ground truth (world.py, synth.py) to measure the platform against.

``world`` is pure geometry (cheap to import); ``synth`` renders and encodes it (``vidlake synth DIR``).
"""

from vidlake.evaluation.world import COLOURS, QUERIES, SHAPES, match_query

__all__ = ["COLOURS", "QUERIES", "SHAPES", "match_query"]
