"""Leases in the lake: one holder at a time, on a local folder and on S3; a dead holder's lease expires."""

from __future__ import annotations

import json
import threading
import time

import pytest

from vidlake.errors import LakeError
from vidlake.platform.config import StorageSettings
from vidlake.platform.lake.lease import Lease


def _exclusive(lake_uri: str, storage: StorageSettings) -> None:
    inside, most = [0], [0]

    def work() -> None:
        for _ in range(5):
            with Lease(lake_uri, "videos", storage, wait_s=60):
                inside[0] += 1
                most[0] = max(most[0], inside[0])
                time.sleep(0.01)
                inside[0] -= 1

    threads = [threading.Thread(target=work) for _ in range(4)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert most[0] == 1  # never two holders at once


def test_one_holder_at_a_time_and_released(tmp_path):
    _exclusive(str(tmp_path / "lake"), StorageSettings())
    assert not list((tmp_path / "lake" / "_leases").iterdir())  # released


def test_a_dead_holders_lease_expires_and_a_live_one_is_waited_for(tmp_path):
    lake = str(tmp_path / "lake")
    path = tmp_path / "lake" / "_leases" / "videos.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"holder": "gone:1", "expires": time.time() - 1}))  # its holder was killed
    with Lease(lake, "videos", wait_s=5) as lease:
        assert json.loads(path.read_text())["holder"] == lease.holder
        with pytest.raises(LakeError, match="still held by"):
            with Lease(lake, "videos", wait_s=0.3):
                pass


@pytest.mark.s3
def test_leases_on_s3_use_conditional_writes(s3_endpoint, s3_bucket):
    _exclusive(f"s3://{s3_bucket}/lake", StorageSettings(endpoint_url=s3_endpoint))


def test_a_refusing_lease_fails_at_once_and_a_long_holder_keeps_its_lease_alive(tmp_path):
    from vidlake.platform.lake.lease import LeaseHeld

    lake = str(tmp_path / "lake")
    path = tmp_path / "lake" / "_leases" / "schedule-x.json"
    with Lease(lake, "schedule-x", ttl_s=0.6, wait_s=0, renew_every_s=0.1, note="run of x.yaml") as lease:
        time.sleep(1.5)  # well past its ttl: renewed all along, so nobody may take it over
        began = time.monotonic()
        with pytest.raises(LeaseHeld, match=r"still held by .*\(run of x.yaml\)") as refused:
            with Lease(lake, "schedule-x", wait_s=0):
                pass
        assert time.monotonic() - began < 0.5  # refused at once, not after waiting
        assert refused.value.holder == lease.holder and refused.value.since == pytest.approx(lease.since)
        assert json.loads(path.read_text())["expires"] > time.time()
    assert not path.exists()
