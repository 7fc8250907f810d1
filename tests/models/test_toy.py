"""The toy Molmo 2's training: windows of the synthetic world with the oracle's answers as targets, a few
deterministic steps, a checkpoint that vidlake loads like any other and a model card that says what it is."""

from __future__ import annotations

import json

import numpy as np
import pytest
from safetensors.numpy import load_file
from transformers import Molmo2ForConditionalGeneration

from vidlake.jobs.ask import run_ask
from vidlake.models.molmo2 import resolve_model
from vidlake.models.toy import TOY_CHECKPOINT, TOY_FRAME_SIZE, build_toy
from vidlake.models.toy_data import CLASSES, FIRST_SEED, WorldWindows, training_row
from vidlake.models.toy_train import TrainConfig, train_toy
from vidlake.platform.config import ModelSettings, load_settings

FAST = dict(steps=2, batch_size=2, warmup=2, frames=(2, 3), vision_steps=1, processes=1)


def test_training_windows_carry_the_oracles_answers_and_a_target_per_visual_token():
    _, processor = build_toy()
    source = WorldWindows(range(FIRST_SEED, FIRST_SEED + 3))
    rng = np.random.default_rng(0)
    windows = [source.sample(rng) for _ in range(12)]
    assert {w.task for w in windows} == {"caption", "count", "point", "track"}
    for w in windows:
        assert w.frames.dtype == np.uint8 and len(w.frames) == len(w.timestamps_s) >= 2
        assert np.all(np.diff(w.timestamps_s) > 0)
        if w.task == "count":
            assert w.prompt.startswith("How many ") and (" total of " in w.answer or w.answer == "There are none.")
        row = training_row(processor, w, grid=4)
        answer = processor.tokenizer.decode(row["input_ids"][row["labels_from"]:])
        assert answer == w.answer + "<|im_end|>"  # the target follows the prompt, as generate() would go on
        assert (row["input_ids"] == processor.tokenizer.convert_tokens_to_ids("<im_patch>")).sum() == 16 * len(w.frames)
        assert row["cells"].shape == (16 * len(w.frames), 3 * len(CLASSES))
        marked = {(f, int(y * 4), int(x * 4), label) for f, objects in enumerate(w.objects) for label, x, y in objects}
        assert row["cells"][:, :len(CLASSES)].sum() == len(marked)  # each object marks its class in its token's cell
        assert 0 <= row["cells"][:, len(CLASSES):].min() and row["cells"][:, len(CLASSES):].max() <= 1  # x, y in the frame
        if w.task in ("point", "track", "count") and "coords" in w.answer:  # every coordinate digit has a token to look at
            triples = [group.split()[1:] for group in w.answer.split('coords="')[1].split('"')[0].split(";")]
            digits = sum(len(t[k + 1]) + len(t[k + 2]) for t in triples for k in range(0, len(t), 3))
            assert len(row["attend"]) == digits  # each digit of each point's x and y
            patch = processor.tokenizer.convert_tokens_to_ids("<im_patch>")
            assert all(row["input_ids"][k] == patch and q >= row["labels_from"] - 1 and 0 <= x <= 1 and 0 <= y <= 1
                       for q, k, x, y in row["attend"])
        if w.task == "caption":  # each object a caption names: its colour and shape words look at its token
            named = w.answer.count(" a ") + w.answer.startswith("a ")
            said = [processor.tokenizer.decode(row["input_ids"][q + 1]).strip() for q, _, _, _ in row["attend"]]
            assert len(said) == 2 * named and all(word in said for kind in CLASSES for word in kind.split()
                                                  if f"a {kind}" in w.answer)
    again = WorldWindows(range(FIRST_SEED, FIRST_SEED + 3)).sample(np.random.default_rng(0))
    assert again.answer == windows[0].answer and np.array_equal(again.frames, windows[0].frames)


def test_captions_name_objects_left_to_right():
    """The oracle's order, so that which object a caption names next is something a model can see."""
    from vidlake.models.oracle import oracle_answer

    seen = [(0.0, [(1, "red circle", 80.0, 10.0), (2, "blue square", 20.0, 50.0), (3, "green triangle", 50.0, 5.0)]),
            (0.5, [(3, "green triangle", 50.0, 5.0)])]
    assert oracle_answer("caption", None, seen, 100, 100) == (
        "At 0.0 seconds, a blue square, a green triangle and a red circle appear. "
        "At 0.5 seconds, a blue square and a red circle leave.")


def test_a_few_steps_are_deterministic_and_give_a_checkpoint_vidlake_loads(tmp_path):
    first = train_toy(tmp_path / "a", TrainConfig(**FAST, save_every=1), echo=lambda _: None, eval_windows=2)
    second = train_toy(tmp_path / "b", TrainConfig(**FAST), echo=lambda _: None, eval_windows=0)
    assert first.steps == 2 and all(np.isfinite(losses).all() for losses in first.losses)
    assert first.losses[0][1] == 0 < first.losses[1][1]  # the language model waits for the vision side's first step
    a, b = load_file(tmp_path / "a" / "model.safetensors"), load_file(tmp_path / "b" / "model.safetensors")
    assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)  # same seed, same weights
    assert sorted(p.name for p in (tmp_path / "a").glob("step-*")) == ["step-1"]  # --save-every: the last is OUT
    after_one = load_file(tmp_path / "a" / "step-1" / "model.safetensors")
    assert not all(np.array_equal(after_one[k], a[k]) for k in a)
    trained = Molmo2ForConditionalGeneration.from_pretrained(tmp_path / "a").state_dict()
    untrained = build_toy()[0].state_dict()
    for key in ("model.vision_tower.patch_embedding.weight", "lm_head.weight"):  # both sides learned
        assert not np.array_equal(trained[key].numpy(), untrained[key].numpy()), key
    card = (tmp_path / "a" / "README.md").read_text()
    assert "Trained only on the synthetic world" in card and "On real footage its answers mean nothing" in card
    meta = json.loads((tmp_path / "a" / "vidlake-toy.json").read_text())
    assert meta["steps"] == 2 and set(meta["scores"]) >= {"count_exact", "point_f1", "caption_names_all"}
    ref = resolve_model(ModelSettings(name=str(tmp_path / "a")))  # the code path that loads Molmo2-4B
    assert ref.model_id == "local:a" and ref.revision.startswith("local-")
    settings = load_settings(model={"name": str(tmp_path / "a"), "max_new_tokens": 16},
                             sampling={"size": TOY_FRAME_SIZE, "max_frames": 4})
    from media import make_video

    result = run_ask(settings, str(make_video(tmp_path / "clip.mp4", seconds=2)), task="count", query="circles",
                     show=False)
    assert result["model_id"] == "local:a" and result["windows"]


def test_two_processes_train_data_parallel_and_deterministically(tmp_path):
    runs = [train_toy(tmp_path / name, TrainConfig(**{**FAST, "batch_size": 4, "processes": 2}), echo=lambda _: None,
                      eval_windows=0) for name in ("a", "b")]
    assert [r.steps for r in runs] == [2, 2] and runs[0].losses == runs[1].losses
    a, b = (load_file(tmp_path / name / "model.safetensors") for name in ("a", "b"))
    assert all(np.array_equal(a[k], b[k]) for k in a)  # same seed and processes, same weights
    alone = train_toy(tmp_path / "c", TrainConfig(**{**FAST, "batch_size": 4}), echo=lambda _: None, eval_windows=0)
    assert alone.losses != runs[0].losses  # each process drew its own windows: not one process's batch twice


def test_the_shipped_toy_checkpoint_loads_and_answers_in_molmo2s_formats(tmp_path):
    """``--model toy``: the checkpoint in the package, pinned by its content hash, loaded by the code that loads
    Molmo2-4B, answering a synthetic video (not a world it was trained on) through the job's own steps."""
    from vidlake.evaluation.synth import make_synthetic
    from vidlake.models.checkpoints import folder_revision
    from vidlake.models.toy import TOY_MODEL_ID

    ref = resolve_model(ModelSettings(name="toy"))
    assert ref.model_id == TOY_MODEL_ID and ref.revision == folder_revision(TOY_CHECKPOINT)
    assert ref.revision.startswith("local-")
    card = (TOY_CHECKPOINT / "README.md").read_text()
    assert "Trained only on the synthetic world" in card and "On real footage its answers mean nothing" in card
    assert sum(f.stat().st_size for f in TOY_CHECKPOINT.iterdir()) < 12e6  # small enough to ship
    video = make_synthetic(tmp_path / "world", videos=1, seed=3, max_seconds=5, short_seconds=(5, 5), echo=None)[0]
    settings = load_settings(model={"name": "toy"}, sampling={"fps": 2.0})  # max_frames: the default 128
    caption = run_ask(settings, str(video), task="caption", show=False)
    assert caption["model_id"] == TOY_MODEL_ID and caption["captions"]
    # 5 s at 2 fps is 10 samples: windows of at most the 8 frames the toy was trained on (fit_sampling), not one
    assert len(caption["windows"]) >= 2 and all(w["end_s"] - w["start_s"] <= 3.5 + 1e-6 for w in caption["windows"])
    assert all(c["text"].startswith(("At ", "A textured")) for c in caption["captions"])
    count = run_ask(settings, str(video), task="count", query="shapes", show=False)
    assert isinstance(count["count"], int) and count["points"]  # counted by pointing, as Molmo 2 counts
    track = run_ask(settings, str(video), task="track", query="shapes", show=False)
    # its tags are not always the right ones or well-formed (<points> for a track, a <tracks> closed by
    # </points>, a cut-off triple: "partial", the issue named), but always Molmo 2's, and read with their ids
    assert all(w["parse_status"] != "failed" and w["raw_text"].startswith(("<tracks coords=", "<points coords=",
                                                                           "There are none"))
               for w in track["windows"])
    assert track["tracks"] and all(t["object_id"] for t in track["tracks"])


def test_a_toy_checkpoint_caps_windows_at_the_frames_it_was_trained_on(tmp_path, capsys):
    from vidlake.jobs.run import fit_sampling
    from vidlake.jobs.spec import parse_job_spec

    def spec(model: str, **sampling):
        return parse_job_spec({"sources": ["v.mp4"], "tasks": [{"task": "count", "queries": ["shapes"], "windows": "fast"}],
                               "model": {"name": model}, "sampling": {"fast_pass": True, **sampling}}, "t")

    asked = spec("toy")
    fitted = fit_sampling(asked, resolve_model(asked.model))
    assert (fitted.sampling.max_frames, fitted.sampling.fast_max_frames) == (8, 8)  # from 128 and 128
    assert capsys.readouterr().out.strip() == ("vidlake/toy-molmo2 was trained on windows of at most 8 frames: "
                                               "sampling max_frames 128, fast_max_frames 128 -> 8")
    within = spec("toy", max_frames=4, fast_max_frames=6)
    assert fit_sampling(within, resolve_model(within.model)) is within and not capsys.readouterr().out
    other = tmp_path / "other"  # a trained toy says what it was trained on (vidlake-toy.json)
    other.mkdir()
    for f in TOY_CHECKPOINT.iterdir():
        (other / f.name).write_bytes(f.read_bytes())
    meta = json.loads((other / "vidlake-toy.json").read_text())
    meta["train"]["frames"] = [2, 16]
    (other / "vidlake-toy.json").write_text(json.dumps(meta))
    assert fit_sampling(spec(str(other)), resolve_model(ModelSettings(name=str(other))), show=False).sampling.max_frames == 16
    (other / "vidlake-toy.json").unlink()  # a Molmo 2 folder that declares nothing: the user's sampling
    plain = spec(str(other))
    assert fit_sampling(plain, resolve_model(plain.model)) is plain


@pytest.mark.parametrize("bad", [{"steps": 0}, {"minutes": 0}, {"processes": 3}, {"processes": 0},
                                 {"save_every": -1}, {"tasks": ("caption", "juggling")}, {"tasks": ()}])
def test_bad_training_settings_are_refused(bad):
    with pytest.raises(ValueError):
        TrainConfig(**bad)


def test_training_batches_group_rows_of_similar_length():
    from vidlake.models.toy_train import _groups

    rows = [{"input_ids": np.zeros(n)} for n in (300, 100, 105, 310, 98)]
    groups = _groups(rows)
    assert sorted(len(r["input_ids"]) for g in groups for r in g) == [98, 100, 105, 300, 310]  # each row once
    assert [[len(r["input_ids"]) for r in g] for g in groups] == [[98, 100, 105], [300, 310]]
    for g in groups:  # padding every row of a group to its longest costs at most 1.15x their own tokens
        assert max(len(r["input_ids"]) for r in g) * len(g) <= 1.15 * sum(len(r["input_ids"]) for r in g)
    assert len(_groups([{"input_ids": np.zeros(50)}, {"input_ids": np.zeros(200)}])) == 2
