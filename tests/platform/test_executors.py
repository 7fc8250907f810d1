"""The two executors run one step list to the same rows: in this process, and on Ray through Ray Data."""

from __future__ import annotations

import os
import sys

import pytest

from vidlake.errors import ConfigError
from vidlake.operators.step import Resources, Step
from vidlake.platform.runtime.executors import LocalExecutor, RayExecutor, ray_args, split_steps


class Plan(Step):
    stage = "plan"
    fanout = "flat"
    outputs = ("part",)
    default_resources = Resources(placement="driver", num_cpus=0.1)

    def process(self, row):
        return [{**row, "part": i} for i in range(row["n"])]


class Work(Step):
    stage = "work"
    outputs = ("square", "pid")
    default_resources = Resources(num_cpus=0.5)

    def process(self, row):
        if row["part"] == 3:
            raise ValueError("three is bad")
        return {**row, "square": row["part"] ** 2, "pid": os.getpid()}


class Tag(Step):
    stage = "tag"
    outputs = ("tag",)
    default_resources = Resources(placement="previous")

    def process(self, row):
        return {**row, "tag": f"{row['name']}-{row['part']}", "tag_pid": os.getpid()}


class Model(Step):
    stage = "model"
    fanout = "batch"
    outputs = ("score", "setup_pid")
    default_resources = Resources(num_cpus=0.5, actor=True, batch_size=2)
    _loaded = ("_offset",)

    def __init__(self, resources=None):
        super().__init__(resources)
        self._offset = None

    def setup(self):
        self._offset, self._pid = 1000, os.getpid()

    def process_batch(self, rows):
        return [{**r, "score": r["square"] + self._offset, "setup_pid": self._pid} for r in rows]


class Count(Step):
    stage = "count"
    outputs = ("seen",)
    default_resources = Resources(placement="driver")

    def process(self, row):
        return {**row, "seen": True}


def _steps():
    return [Plan(), Work(), Tag(), Model(), Count()]


def _key(rows):
    keep = ("name", "part", "status", "error_kind", "error_stage", "square", "tag", "score", "seen")
    return sorted(tuple(r.get(k) for k in keep) for r in rows)


INPUT = [{"name": "a", "n": 2}, {"name": "b", "n": 5}]


def test_local_executor_streams_the_list_and_reports_the_plan():
    planned = []
    rows = list(LocalExecutor().run(_steps(), INPUT, on_planned=planned.extend))
    assert len(planned) == 7 and all(r["status"] == "ok" for r in planned)
    assert len(rows) == 7 and all(r["seen"] for r in rows if r["status"] == "ok")
    bad = [r for r in rows if r["status"] != "ok"]
    assert [(r["name"], r["part"], r["error_stage"], r["error_kind"]) for r in bad] == [("b", 3, "work", "work_failed")]
    assert bad[0]["score"] is None and bad[0]["tag"] is None  # later steps let the error row pass
    assert {r["score"] for r in rows if r["name"] == "a"} == {1000, 1001}


def test_driver_steps_must_sit_at_either_end():
    assert [len(part) for part in split_steps(_steps())] == [1, 3, 1]
    assert [len(part) for part in split_steps([Plan(), Count()])] == [2, 0, 0]
    assert [len(part) for part in split_steps([Work()])] == [0, 1, 0]
    with pytest.raises(ConfigError, match="count"):
        split_steps([Work(), Count(), Work()])


def test_resources_become_ray_arguments():
    assert ray_args(Resources(num_cpus=0.5)) == {"num_cpus": 0.5, "num_gpus": 0.0}
    assert ray_args(Resources(num_gpus=1, memory=2e9)) == {"num_cpus": 1.0, "num_gpus": 1, "memory": 2e9}


@pytest.mark.ray
def test_ray_executor_gives_the_local_executor_rows(ray_session):
    from ray import cloudpickle

    cloudpickle.register_pickle_by_value(sys.modules[__name__])  # the test's steps travel by value
    executor = RayExecutor()
    planned = []
    rows = list(executor.run(_steps(), INPUT, on_planned=planned.extend))
    assert len(planned) == 7
    assert _key(rows) == _key(LocalExecutor().run(_steps(), INPUT))
    ok = [r for r in rows if r["status"] == "ok"]
    assert {r["pid"] for r in ok} != {os.getpid()}  # the cluster part ran in Ray's workers
    assert all(r["tag_pid"] == r["pid"] for r in ok)  # placement="previous": in the same task, fused
    assert len({r["setup_pid"] for r in ok}) == 1  # one actor, set up once
    assert "Map" in executor.dataset.stats() or "map" in executor.dataset.stats()


STARVED = """
import sys, threading, time
import ray
sys.path.insert(0, sys.argv[1])
import test_executors as t
from vidlake.platform.config import RaySettings
from vidlake.platform.runtime.executors import RayExecutor

ray.init(address="local", num_cpus=1, include_dashboard=False, _node_ip_address="127.0.0.1",
         logging_level="ERROR")
ray.cloudpickle.register_pickle_by_value(t)

@ray.remote(num_cpus=1)
class Holder:  # another holder of the Ray's only CPU (a search service, another job)
    def ready(self):
        return True

holder = Holder.remote()
ray.get(holder.ready.remote())
out = []
job = threading.Thread(target=lambda: out.extend(RayExecutor(RaySettings(stall_warning_s=2)).run(
    [t.Plan(), t.Work()], [{"name": "a", "n": 2}])))
job.start()
time.sleep(12)
print("waiting" if job.is_alive() and not out else "not waiting", flush=True)
ray.kill(holder)
job.join(120)
print("squares", sorted(r["square"] for r in out), flush=True)
"""


def test_a_pipeline_starved_of_cpus_says_so_and_finishes_when_they_are_free(tmp_path):
    """Another holder of the Ray's CPUs: the job waits, says what it lacks once no row has come back for
    ``ray.stall_warning_s``, and ends normally once the CPU is free (its own Ray: the session's may have CPUs
    freed or taken by other tests at any time)."""
    import subprocess

    env = {**os.environ, "RAY_AUTH_MODE": "disabled"}
    env.pop("RAY_ADDRESS", None)
    out = subprocess.run([sys.executable, "-c", STARVED, os.path.dirname(__file__)], capture_output=True, text=True,
                         timeout=240, env=env)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "waiting" in out.stdout.splitlines() and "squares [0, 1]" in out.stdout, out.stdout
    assert "no result for" in out.stderr and "Work needs 0.5 CPU (0 of 1 free)" in out.stderr, out.stderr[-3000:]
    assert "the job waits" in out.stderr
