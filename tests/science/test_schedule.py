"""Schedules over the synthetic world with the oracle: the embedded scheduler fires twice and the second
run does no duplicate work, the lease refuses a second run of a schedule, webhooks on every end, the
Kubernetes export."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest
import yaml
from science.fixtures import write_science_spec
from receiver import Receiver

from vidlake.errors import ConfigError
from vidlake.jobs.schedule import export_k8s, list_schedules, run_once, start_scheduler
from vidlake.jobs.spec import load_job_spec
from vidlake.platform.config import load_settings
from vidlake.platform.lake import Lake
from vidlake.platform.runtime.executors import LocalExecutor

ROOT = Path(__file__).resolve().parents[2]


def _job_runs(lake: Lake) -> list[dict]:
    return sorted((r for r in lake.read("runs").to_pylist() if r["job"] == "science"), key=lambda r: r["started_at"])


def test_a_schedule_fires_twice_and_the_second_run_does_no_duplicate_work(science_world, tmp_path, monkeypatch):
    monkeypatch.setenv("SCIENCE_HOOK_SECRET", "k3y")
    with Receiver() as receiver:
        spec = write_science_spec(science_world, tmp_path, schedule={"every": "1s"},
                                  notify=[{"url": receiver.url, "secret_env": "SCIENCE_HOOK_SECRET"}],
                                  report={"out": str(tmp_path / "report")})
        said: list[str] = []
        ended = start_scheduler(spec, tmp_path / "state", max_runs=2, local=True, echo=said.append)
    assert ended == 2
    lake = Lake(str(tmp_path / "lake"))
    first, second = _job_runs(lake)
    assert first["status"] == second["status"] == "completed"
    assert first["videos_new"] == 3 and second["videos_new"] == 0  # nothing left to do the second time
    assert json.loads(second["metrics_json"])["windows_ok"] == 0
    outputs = lake.read("outputs").to_pylist()
    assert {r["run_id"] for r in outputs} == {first["run_id"]}  # every output written once, by the first run
    analyze = sorted((r for r in lake.read("runs").to_pylist() if r["job"] == "analyze"), key=lambda r: r["started_at"])
    assert [json.loads(r["metrics_json"])["analyses"]["hourly"]["mode"] for r in analyze] == ["full", "up to date"]
    # a signed "completed" message per run, with the run's numbers
    assert [p["run_id"] for p in receiver.payloads()] == [first["run_id"], second["run_id"]]
    assert all(Receiver.signed_by(r, "k3y") for r in receiver.requests)
    assert [p["counts"]["videos_todo"] for p in receiver.payloads()] == [3, 0]
    assert receiver.payloads()[0]["schedule"] == "science" and receiver.payloads()[0]["analyses"]["hourly"]["mode"] == "full"
    # each run wrote the report of the spec's analyses
    assert {p["report"] for p in receiver.payloads()} == {str(tmp_path / "report")}
    assert {"index.html", "hourly.html", "paths.html"} <= {p.name for p in (tmp_path / "report").iterdir()}
    assert [r["status"] for r in lake.read("runs").to_pylist() if r["job"] == "report"] == ["completed"] * 2
    assert len(said) == 3 and "run 2 completed" in said[-1]
    # the job store keeps the schedule for the next start
    (kept,) = list_schedules(tmp_path / "state")
    assert kept["name"] == "science" and kept["spec"] == str(spec.resolve()) and "interval" in kept["trigger"]


def test_two_runs_of_one_schedule_at_once_the_lease_refuses_the_second(science_world, tmp_path):
    with Receiver() as receiver:
        spec = write_science_spec(science_world, tmp_path, schedule={"cron": "0 2 * * *"},
                                  notify=[{"url": receiver.url, "on": ["completed", "skipped"]}])
        go = threading.Barrier(2)
        results: list = []

        def start() -> None:
            go.wait()
            results.append(run_once(spec, load_settings(), executor=LocalExecutor(), show=False))

        threads = [threading.Thread(target=start) for _ in range(2)]
        [t.start() for t in threads]
        [t.join() for t in threads]
    assert sorted(r.state for r in results) == ["completed", "skipped"]
    skipped = next(r for r in results if r.state == "skipped")
    assert "still running elsewhere" in skipped.message
    rows = {r["run_id"]: r for r in _job_runs(Lake(str(tmp_path / "lake")))}
    assert rows[skipped.run_id]["status"] == "skipped" and len(rows) == 2
    assert sorted(p["state"] for p in receiver.payloads()) == ["completed", "skipped"]
    assert not (tmp_path / "lake" / "_leases" / "schedule-science.json").exists()  # given back


def test_a_failed_run_is_sent_to_the_webhooks(science_world, tmp_path):
    with Receiver() as receiver:
        spec = write_science_spec(science_world, tmp_path, notify=[{"url": receiver.url}])
        data = yaml.safe_load(spec.read_text())
        data["model"]["name"] = f"oracle:{tmp_path / 'no-such-truth'}"
        spec.write_text(yaml.safe_dump(data))
        with pytest.raises(Exception, match="no-such-truth"):
            run_once(spec, load_settings(), executor=LocalExecutor(), show=False)
    (payload,) = receiver.payloads()
    assert payload["state"] == "failed" and "no-such-truth" in payload["message"]
    (row,) = _job_runs(Lake(str(tmp_path / "lake")))
    assert row["status"] == "failed" and row["run_id"] == payload["run_id"]


def test_bad_schedules_fail_before_any_work(science_world, tmp_path, monkeypatch):
    spec = write_science_spec(science_world, tmp_path, schedule={"cron": "0 25 * * *"})
    with pytest.raises(ConfigError, match=r"cron expression '0 25 \* \* \*' does not parse"):
        start_scheduler(spec, tmp_path / "state", local=True)
    spec = write_science_spec(science_world, tmp_path, notify=[{"url": "file:///etc/passwd"}])
    with pytest.raises(ConfigError, match="must be http"):
        run_once(spec, load_settings(), executor=LocalExecutor())
    monkeypatch.delenv("NOT_SET_SECRET", raising=False)
    spec = write_science_spec(science_world, tmp_path, schedule={"every": "1h"},
                              notify=[{"url": "http://127.0.0.1:9/x", "secret_env": "NOT_SET_SECRET"}])
    with pytest.raises(ConfigError, match="NOT_SET_SECRET"):
        start_scheduler(spec, tmp_path / "state", local=True)
    with pytest.raises(ConfigError, match="NOT_SET_SECRET"):
        run_once(spec, load_settings(), executor=LocalExecutor())
    with pytest.raises(ConfigError, match="needs schedule.cron"):
        export_k8s(spec, tmp_path / "k8s", "img")
    assert not (tmp_path / "lake").exists() and not (tmp_path / "state").exists()  # nothing was done


def test_the_kubernetes_export_is_what_infra_holds_and_carries_the_deployments_file(science_world, tmp_path):
    folder = ROOT / "infra" / "k8s" / "schedule"
    assert export_k8s(folder / "job.yaml", tmp_path / "infra", "registry.example.com/vidlake:0.1.0-ray2.60.0") == []
    for name in ("cronjob.yaml", "rayjob-template.yaml", "kustomization.yaml", "job.yaml"):
        assert (tmp_path / "infra" / name).read_text() == (folder / name).read_text(), (
            f"infra/k8s/schedule/{name} is stale: run vidlake schedule export-k8s "
            f"infra/k8s/schedule/job.yaml --out infra/k8s/schedule")
    spec = write_science_spec(science_world, tmp_path / "s", schedule={"cron": "*/30 * * * *",
                                                                       "timezone": "Europe/Berlin"})
    warnings = export_k8s(spec, tmp_path / "out", "img:1")
    assert any(w.startswith("lake is on local disk") for w in warnings)
    docs = list(yaml.safe_load_all((tmp_path / "out" / "cronjob.yaml").read_text()))
    cron = next(d for d in docs if d["kind"] == "CronJob")
    assert (cron["spec"]["schedule"], cron["spec"]["timeZone"]) == ("*/30 * * * *", "Europe/Berlin")
    rayjob = yaml.safe_load((tmp_path / "out" / "rayjob-template.yaml").read_text())
    assert rayjob["spec"]["entrypoint"].startswith("vidlake schedule once /specs/job.yaml")
    assert rayjob["spec"]["activeDeadlineSeconds"] < 1800  # stops before the next run
    kustomization = yaml.safe_load((tmp_path / "out" / "kustomization.yaml").read_text())
    assert set(kustomization["configMapGenerator"][0]["files"]) == {"rayjob-template.yaml", "job.yaml",
                                                                    "deployments.csv"}
    job = load_job_spec(tmp_path / "out" / "job.yaml")
    assert job.deployments.file == "/specs/deployments.csv" and (tmp_path / "out" / "deployments.csv").is_file()
    before = spec.read_text()
    with pytest.raises(ConfigError, match="holds the spec itself"):  # never rewrites the spec it reads
        export_k8s(spec, spec.parent, "img:1")
    assert spec.read_text() == before


def _due_in_the_past(state: Path, name: str, hours: float) -> None:
    """Move a kept schedule's due time back, as if the scheduler had been down for ``hours``."""
    from datetime import datetime, timedelta, timezone

    from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore

    store = SQLAlchemyJobStore(url=f"sqlite:///{state / 'schedules.sqlite'}")
    store.start(None, "default")
    job = store.lookup_job(name)
    job.next_run_time = datetime.now(timezone.utc) - timedelta(hours=hours)
    store.update_job(job)
    store.shutdown()


@pytest.mark.parametrize("grace_h, runs", [(1, 1), (0.25, 0)], ids=["within-grace", "too-late"])
def test_runs_missed_while_the_scheduler_was_down_run_once_or_are_skipped(science_world, tmp_path, grace_h, runs):
    """Down for 3.5 hours of an hourly schedule (the last missed run was due half an hour ago): within
    the grace the four missed runs become one run at once, and the next is due on the hourly grid;
    past the grace they are skipped and said so."""
    from datetime import datetime, timedelta, timezone

    spec = write_science_spec(science_world, tmp_path, schedule={"every": "1h", "misfire_grace_s": int(grace_h * 3600)})
    state = tmp_path / "state"
    stop = threading.Event()
    stop.set()  # start, keep the schedule in the store, stop
    assert start_scheduler(spec, state, local=True, echo=lambda _: None, stop=stop) == 0
    _due_in_the_past(state, "science", hours=3.5)
    said: list[str] = []
    if runs:
        assert start_scheduler(spec, state, max_runs=1, local=True, echo=said.append) == 1
    else:
        stop = threading.Event()
        threading.Timer(3.0, stop.set).start()
        assert start_scheduler(spec, state, local=True, echo=said.append, stop=stop) == 0
        assert any("was missed" in line for line in said)
    assert len(_job_runs(Lake(str(tmp_path / "lake")))) if runs else not (tmp_path / "lake").exists()
    (kept,) = list_schedules(state)
    assert kept["next_run"] > datetime.now(timezone.utc) + timedelta(minutes=25)  # coalesced: not the next missed one
