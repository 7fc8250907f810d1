"""Webhooks against a real HTTP receiver on 127.0.0.1: signed payloads, retries with backoff, records."""

from __future__ import annotations

import socket

import pytest
from receiver import Receiver

from vidlake.errors import ConfigError
from vidlake.platform.lake import Lake
from vidlake.platform.notify import WebhookSpec, deliver, notify

PAYLOAD = {"run_id": "r1", "job": "nightly", "state": "completed", "counts": {"windows_ok": 3}}


def test_a_signed_payload_reaches_the_receiver(monkeypatch):
    monkeypatch.setenv("HOOK_SECRET", "s3cret")
    with Receiver() as receiver:
        hook = WebhookSpec(url=receiver.url + "?token=abc", secret_env="HOOK_SECRET")
        delivery = deliver(hook, "completed", PAYLOAD)
    (request,) = receiver.requests
    assert delivery.ok and delivery.attempts == 1 and delivery.status_code == 200 and delivery.signed
    assert Receiver.signed_by(request, "s3cret") and not Receiver.signed_by(request, "other")
    body = receiver.payloads()[0]
    assert body["run_id"] == "r1" and body["event"] == "completed" and body["counts"] == {"windows_ok": 3}
    assert request["headers"]["X-Vidlake-Delivery"] == body["delivery_id"] == delivery.delivery_id
    assert request["path"] == "/hook?token=abc" and "token" not in delivery.url  # the record drops the query


def test_a_failing_receiver_is_retried_then_recorded(tmp_path):
    lake = Lake(str(tmp_path / "lake"))
    with Receiver([503, 502, 200]) as flaky, Receiver([500]) as down, Receiver([404]) as wrong:
        hooks = [WebhookSpec(url=u, attempts=4, backoff_s=0.01) for u in (flaky.url, down.url, wrong.url)]
        hooks.append(WebhookSpec(url=flaky.url, on=["failed"]))  # not asked for this event: never called
        deliveries = notify(hooks, "completed", PAYLOAD, lake)
    assert [len(r.requests) for r in (flaky, down, wrong)] == [3, 4, 1]  # 4xx is final: not retried
    assert len({r["headers"]["X-Vidlake-Delivery"] for r in down.requests}) == 1  # one delivery, retried
    rows = {r["url"]: r for r in lake.read("notifications").to_pylist()}
    assert len(deliveries) == len(rows) == 3
    assert (rows[flaky.url]["ok"], rows[flaky.url]["attempts"]) == (True, 3)
    assert (rows[down.url]["ok"], rows[down.url]["attempts"], rows[down.url]["status_code"]) == (False, 4, 500)
    assert (rows[wrong.url]["ok"], rows[wrong.url]["status_code"], rows[wrong.url]["error"]) == (False, 404, "HTTP 404")
    assert all(r["run_id"] == "r1" and r["event"] == "completed" for r in rows.values())


def test_a_receiver_that_is_not_there_is_retried_and_recorded(tmp_path):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    (delivery,) = notify([WebhookSpec(url=f"http://127.0.0.1:{port}/x", attempts=2, backoff_s=0.01)], "failed",
                         PAYLOAD, Lake(str(tmp_path / "lake")))
    assert (delivery.ok, delivery.attempts, delivery.status_code) == (False, 2, None)
    assert "ConnectionError" in delivery.error


def test_bad_webhooks_fail_before_any_work(monkeypatch):
    with pytest.raises(ValueError, match="must be http"):
        WebhookSpec(url="ftp://127.0.0.1/x")
    with pytest.raises(ValueError, match="must be http"):
        WebhookSpec(url="hook.example.org/x")
    monkeypatch.delenv("MISSING_SECRET", raising=False)
    with pytest.raises(ConfigError, match="MISSING_SECRET"):
        deliver(WebhookSpec(url="http://127.0.0.1:9/x", secret_env="MISSING_SECRET"), "completed", PAYLOAD)
