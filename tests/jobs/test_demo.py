"""The demo's synthetic part: a world beside the lake, answered by the oracle engine through the main job, so
that the timeline and the search hold captions, counts and tracks that match the pixels."""

from __future__ import annotations

import csv

from vidlake.jobs.demo import DEMO_WORLD_SEED, demo_world, synthetic_demo_spec
from vidlake.jobs.run import run_job
from vidlake.platform.config import load_settings
from vidlake.platform.lake import Lake
from vidlake.platform.runtime.executors import LocalExecutor


def test_the_synthetic_demo_world_is_answered_by_the_oracle_into_the_lake(tmp_path, monkeypatch):
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
    assert spec.model.name == f"oracle:{world}"
    result = run_job(spec, settings, show=False, executor=LocalExecutor())
    assert result.windows_failed == 0 and result.windows_ok > 0
    lake = Lake(spec.lake)
    with open(world / "points.csv") as f:
        kinds = {row["label"] for row in csv.DictReader(f)}
    captions = lake.read("captions").to_pylist()
    assert captions and all(c["text"].startswith("At ") for c in captions)
    tracks, counts = lake.read("tracks").to_pylist(), lake.read("counts").to_pylist()
    assert tracks and counts and all(t["object_id"] for t in tracks)
    assert all(any(kind in c["text"] for c in captions) for kind in kinds)  # every kind on screen is named
