"""The step contract: what every step gets for free (pass-through, row errors with their stage, NaN, counters)."""

from __future__ import annotations

import math
import pickle

import numpy as np
import pytest

from vidlake.errors import ModelLoadError, RowError
from vidlake.operators.step import Resources, Step, stats_of


class Halve(Step):
    stage = "halve"
    outputs = ("half",)

    def process(self, row):
        if row["n"] < 0:
            raise RowError("negative", f"{row['n']} is negative")
        if row["n"] == 13:
            raise ValueError("unlucky")
        return {**row, "half": row["n"] / 2}


class Split(Step):
    stage = "split"
    fanout = "flat"
    outputs = ("part",)
    drops = ("n",)

    def process(self, row):
        return [{**row, "part": i} for i in range(row["n"])]


class Loads(Step):
    stage = "loads"
    fanout = "batch"
    outputs = ("total",)
    _loaded = ("_model",)
    setups = 0

    def __init__(self, resources=None):
        super().__init__(resources)
        self._model = None

    def setup(self):
        type(self).setups += 1
        self._model = sum

    def process_batch(self, rows):
        if any(r["n"] == 99 for r in rows):
            raise ModelLoadError("the model is gone")
        return [{**r, "total": self._model(r2["n"] for r2 in rows)} for r in rows]


def test_ok_rows_are_processed_and_failures_become_error_columns_with_the_stage():
    step = Halve()
    assert step({"n": 4}) == {"n": 4, "half": 2.0, "status": "ok", "error_kind": None, "error": None,
                              "error_stage": None}
    bad = step({"n": -1})
    assert (bad["status"], bad["error_kind"], bad["error"], bad["error_stage"], bad["half"]) == (
        "error", "negative", "-1 is negative", "halve", None)
    odd = step({"n": 13})
    assert (odd["error_kind"], odd["error"], odd["error_stage"]) == ("halve_failed", "ValueError: unlucky", "halve")
    assert (step.stats.rows_in, step.stats.rows_out, step.stats.failed) == (3, 3, 2)


def test_rows_in_error_pass_untouched_with_the_step_columns_added():
    step = Halve()
    row = {"n": 4, "status": "error", "error_kind": "missing", "error": "gone", "error_stage": "sample"}
    assert step(row) == {**row, "half": None}
    assert (step.stats.passed, step.stats.failed) == (1, 0)


def test_ray_nulls_and_numpy_scalars_are_normalised_but_arrays_stay():
    frames = np.zeros((2, 3), np.uint8)
    out = Halve()({"n": np.int64(6), "status": float("nan"), "error": float("nan"), "frames": frames})
    assert out["status"] == "ok" and out["error"] is None and out["half"] == 3.0
    assert type(out["n"]) is int and out["frames"] is frames


def test_flat_steps_fan_out_pass_errors_as_one_row_and_drop_columns():
    step = Split()
    assert step({"n": 2}) == [{"part": 0, "status": "ok", "error_kind": None, "error": None, "error_stage": None},
                              {"part": 1, "status": "ok", "error_kind": None, "error": None, "error_stage": None}]
    failed = step({"n": 2, "status": "error"})
    assert len(failed) == 1 and failed[0]["part"] is None and "n" not in failed[0]
    assert step.stats.rows_out == 3


def test_batch_steps_get_ok_rows_in_order_set_up_once_and_take_columnar_batches():
    Loads.setups = 0
    step = Loads(Resources(batch_size=3))
    out = step({"n": [1, 2, 3], "status": ["ok", "error", None]})  # Ray Data's columnar batch
    assert out["total"] == [4, None, 4] and out["status"] == ["ok", "error", "ok"]
    step([{"n": 5}])
    assert Loads.setups == 1
    clone = pickle.loads(pickle.dumps(step))
    assert clone._model is None and clone.resources.batch_size == 3 and clone.stats.rows_in == 0
    with pytest.raises(ModelLoadError):  # a fatal error stops the run, never becomes a row error
        step([{"n": 99}])


def test_counters_add_up_by_stage():
    a, b = Halve(), Halve()
    a({"n": 1})
    b({"n": -1})
    stats = stats_of([a, b])
    assert (stats["halve"].rows_in, stats["halve"].failed) == (2, 1)
    assert stats["halve"].seconds >= 0 and not math.isnan(stats["halve"].seconds)
