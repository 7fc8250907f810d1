"""Model inputs: real timestamps in the prompt, and batching that equals the processor's own."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from tiny_model import tiny_ref, tiny_settings  # noqa: F401 - fixtures
from transformers import Molmo2ImageProcessor, Molmo2Processor, Molmo2VideoProcessor

from vidlake.models.molmo2 import load_processor
from vidlake.models.molmo2_inputs import collate, pixel_norm, prepare_window, strip_special_tokens


@pytest.fixture(scope="module")
def processor(tiny_ref, tiny_settings):  # noqa: F811
    return load_processor(tiny_ref, tiny_settings)


def _frames(n, h=48, w=64, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (n, h, w, 3), dtype=np.uint8)


def _frame_times(processor, input_ids):
    text = processor.tokenizer.decode(input_ids)
    return [float(part.split()[-1]) for part in text.split("<frame_start>")[:-1]]


def test_prompt_carries_window_relative_pts_in_a_millisecond_time_base(processor):
    pts = [100.0, 100.8, 104.267, 107.95]  # variable frame rate, absolute source times
    inputs = prepare_window(processor, _frames(4), pts, 100.0, "Track the dog.")
    assert _frame_times(processor, inputs["input_ids"]) == [0.0, 0.8, 4.3, 8.0]  # printed with one decimal
    assert inputs["visual_tokens"] == 4 * 9  # tiny: 126 px -> 9x9 patches -> pooled 3x3 -> 9 tokens per frame
    assert inputs["prompt_tokens"] == len(inputs["input_ids"])
    assert inputs["pixel_values_videos"].dtype == np.uint8  # resized, not yet normalized: 4x less to ship
    with pytest.raises(ValueError, match="before the window offset"):
        prepare_window(processor, _frames(2), [5.0, 5.5], 6.0, "x")
    with pytest.raises(ValueError, match="uint8"):
        prepare_window(processor, _frames(2).astype(np.float32), [0.0, 0.5], 0.0, "x")


def test_collated_windows_equal_the_processors_batched_call(processor):
    a, b = _frames(8, seed=1), _frames(3, 30, 40, seed=2)
    ta, tb = [10.04 + 0.5 * i for i in range(8)], [20.0, 20.25, 20.5]
    questions = ["Point to the dog.", "How many cars are there on the long road today?"]
    rows = [prepare_window(processor, a, ta, 10.0, questions[0]), prepare_window(processor, b, tb, 20.0, questions[1])]
    got = collate(rows, processor.tokenizer.pad_token_id, pixel_norm(processor.video_processor))

    def meta(ts, offset):
        idx = [round((t - offset) * 1000) for t in ts]
        return {"total_num_frames": max(idx) + 1, "fps": 1000.0, "frames_indices": idx}

    texts = [processor.apply_chat_template(
        [{"role": "user", "content": [{"type": "video"}, {"type": "text", "text": q}]}],
        add_generation_prompt=True, tokenize=False) for q in questions]
    want = processor(text=texts, videos=[a, b], video_metadata=[meta(ta, 10.0), meta(tb, 20.0)], do_sample_frames=False,
                     padding=True, padding_side="left", return_tensors="pt")
    assert set(want) == set(got)
    for key in want:
        assert torch.equal(got[key], want[key].to(got[key].dtype)), key  # bit-exact, normalization included
    assert got["attention_mask"][1, 0] == 0 and got["input_ids"].shape[0] == 2


def test_real_checkpoint_geometry_gives_81_tokens_per_frame(processor):
    """The same code with Molmo 2's released video settings (378 px, patch 14, pooling 3x3)."""
    real = Molmo2Processor(
        image_processor=Molmo2ImageProcessor(),
        video_processor=Molmo2VideoProcessor(do_rescale=True, do_normalize=True),
        tokenizer=processor.tokenizer, chat_template=processor.chat_template,
    )
    inputs = prepare_window(real, _frames(5, 360, 640), [0.0, 0.5, 1.0, 1.5, 2.0], 0.0, "What happens?")
    assert inputs["visual_tokens"] == 5 * 81
    assert inputs["pixel_values_videos"].shape == (5, 27 * 27, 14 * 14 * 3)
    assert inputs["video_token_pooling"].shape == (5 * 81, 9)


def test_special_tokens_cannot_be_injected_through_a_query(processor):
    assert strip_special_tokens("the <|video|>dog<im_patch><|im_end|>", processor.tokenizer) == "the dog"
