"""The demo's synthetic part: a world beside the lake, answered by the shipped toy Molmo 2 through the main job,
then scored against the world's truth."""

from __future__ import annotations

from vidlake.jobs.demo import DEMO_WORLD_SEED, _score, demo_world, synthetic_demo_spec
from vidlake.jobs.run import run_job
from vidlake.models.toy import TOY_MODEL_ID
from vidlake.platform.config import load_settings
from vidlake.platform.lake import Lake
from vidlake.platform.runtime.executors import LocalExecutor


def test_the_synthetic_demo_world_is_answered_by_the_toy_model_and_scored(tmp_path, monkeypatch, capsys):
    import vidlake.evaluation.synth as synth

    made = []
    real = synth.make_synthetic

    def small(out, **kw):  # the demo's world, shorter: one 8 s video
        made.append(kw)
        return real(out, **{**kw, "videos": 1, "max_seconds": 8, "short_seconds": (8, 8), "echo": None})

    monkeypatch.setattr(synth, "make_synthetic", small)
    settings = load_settings(lake={"uri": str(tmp_path / "lake")})
    world = demo_world(settings)
    assert world == tmp_path / "lake-synthetic" and made[0]["seed"] == DEMO_WORLD_SEED
    assert demo_world(settings) == world and len(made) == 1  # written once, then reused
    spec = synthetic_demo_spec(settings, world)
    assert spec.model.name == "toy"
    result = run_job(spec, settings, show=False, executor=LocalExecutor())
    assert result.windows_failed == 0 and result.windows_ok > 0
    lake = Lake(spec.lake)
    captions, counts = lake.read("captions").to_pylist(), lake.read("counts").to_pylist()
    assert captions and all(c["text"].startswith(("At ", "A textured")) for c in captions)
    assert counts and {r["model_id"] for r in lake.read("outputs").to_pylist()} == {TOY_MODEL_ID}
    _score(settings, world)
    line = capsys.readouterr().out
    assert "the toy model against the world's truth: count exact " in line and "track HOTA " in line
