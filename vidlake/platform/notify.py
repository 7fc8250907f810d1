"""Webhooks: a JSON message when a run ends (completed, failed, or a scheduled run skipped).

    POST <url>
    Content-Type: application/json
    X-Vidlake-Event: completed | failed | skipped
    X-Vidlake-Delivery: <delivery id>                (the same on every attempt: receivers drop repeats)
    X-Vidlake-Signature-256: sha256=<hex>            (when a secret is set)

The signature is HMAC-SHA256 of the raw body with the secret, as GitHub signs its webhooks; the body
carries ``sent_at``, so a receiver can also refuse old messages. The secret is never in the spec: the
spec names the environment variable that holds it (``secret_env``), so specs and the ``runs`` table
stay free of it. Connection errors, timeouts, 408, 429 and 5xx answers are retried with exponential
backoff (tenacity); other answers are final. A delivery that fails for good never fails the run: it
is printed and kept, like every delivery, in the lake's ``notifications`` table.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import sys
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Callable, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator
from tenacity import RetryError, Retrying, retry_if_exception_type, stop_after_attempt, wait_exponential

from vidlake.errors import ConfigError

__all__ = ["EVENTS", "Delivery", "WebhookSpec", "check_secrets", "deliver", "notify", "sign"]

EVENTS = ("completed", "failed", "skipped")
Event = Literal["completed", "failed", "skipped"]


class WebhookSpec(BaseModel):
    """One webhook of a job spec's ``notify:`` list."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    url: str = Field(description="http:// or https:// URL that receives the POST.")
    on: list[Event] = Field(["completed", "failed"], min_length=1, description="Which run ends to send.")
    secret_env: str | None = Field(None, description="Environment variable holding the HMAC secret; "
                                   "the payload is signed when set.")
    timeout_s: float = Field(10.0, gt=0, description="Per attempt.")
    attempts: int = Field(5, ge=1, le=20, description="Attempts in all, the first included.")
    backoff_s: float = Field(1.0, ge=0, description="Wait before the second attempt; doubles each time, at most 60 s.")

    @field_validator("url")
    @classmethod
    def _http(cls, url: str) -> str:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"webhook URL must be http(s)://host/... (got {url!r})")
        return url

    def secret(self) -> bytes | None:
        if self.secret_env is None:
            return None
        value = os.environ.get(self.secret_env)
        if not value:
            raise ConfigError(f"webhook {self.shown_url}: environment variable {self.secret_env} (its secret) is not set")
        return value.encode()

    @property
    def shown_url(self) -> str:
        """The URL without query string or credentials (they may carry tokens)."""
        parts = urlsplit(self.url)
        port = f":{parts.port}" if parts.port else ""
        return f"{parts.scheme}://{parts.hostname}{port}{parts.path}"


def check_secrets(hooks: list[WebhookSpec]) -> None:
    """Every secret a hook names is set: checked before any work."""
    for hook in hooks:
        hook.secret()


def sign(secret: bytes, body: bytes) -> str:
    """The ``X-Vidlake-Signature-256`` header value of ``body``."""
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()


@dataclass
class Delivery:
    delivery_id: str
    event: str
    url: str
    ok: bool
    attempts: int
    status_code: int | None
    error: str | None
    signed: bool

    def row(self, run_id: str) -> dict[str, Any]:
        return {**self.__dict__, "run_id": run_id, "at": datetime.now(timezone.utc)}


class _Retryable(Exception):
    def __init__(self, message: str, status_code: int | None = None):
        super().__init__(message)
        self.status_code = status_code


def deliver(hook: WebhookSpec, event: str, payload: dict[str, Any]) -> Delivery:
    """POST ``payload`` to ``hook`` with retries; never raises for the receiver's failures."""
    import requests

    delivery_id = uuid.uuid4().hex
    body = json.dumps({**payload, "event": event, "delivery_id": delivery_id,
                       "sent_at": datetime.now(timezone.utc).isoformat()}, default=str).encode()
    secret = hook.secret()
    headers = {"Content-Type": "application/json", "User-Agent": "vidlake-webhook",
               "X-Vidlake-Event": event, "X-Vidlake-Delivery": delivery_id}
    if secret is not None:
        headers["X-Vidlake-Signature-256"] = sign(secret, body)
    attempts, last_status = 0, None

    def post() -> int:
        nonlocal attempts, last_status
        attempts += 1
        try:
            response = requests.post(hook.url, data=body, headers=headers, timeout=hook.timeout_s,
                                     allow_redirects=False)
        except requests.RequestException as exc:
            raise _Retryable(f"{type(exc).__name__}: {exc}") from None
        last_status = response.status_code
        if response.status_code in (408, 429) or response.status_code >= 500:
            raise _Retryable(f"HTTP {response.status_code}", response.status_code)
        return response.status_code

    retrying = Retrying(stop=stop_after_attempt(hook.attempts), retry=retry_if_exception_type(_Retryable),
                        wait=wait_exponential(multiplier=hook.backoff_s, max=60), reraise=False)
    try:
        status = retrying(post)
    except RetryError as exc:
        return Delivery(delivery_id, event, hook.shown_url, False, attempts, last_status,
                        str(exc.last_attempt.exception()), secret is not None)
    ok = 200 <= status < 300
    return Delivery(delivery_id, event, hook.shown_url, ok, attempts, status, None if ok else f"HTTP {status}",
                    secret is not None)


def _stderr(message: str) -> None:
    print(message, file=sys.stderr)


def notify(hooks: list[WebhookSpec], event: str, payload: dict[str, Any], lake: Any = None,
           echo: Callable[[str], None] = _stderr) -> list[Delivery]:
    """Send ``event`` to every hook that asks for it; keep each delivery in ``lake``'s ``notifications``;
    ``echo`` says which were not delivered."""
    deliveries = [deliver(h, event, payload) for h in hooks if event in h.on]
    for d in deliveries:
        if not d.ok:
            echo(f"webhook {d.url}: not delivered after {d.attempts} attempt(s): {d.error}")
    if deliveries and lake is not None:
        try:
            lake.append("notifications", [d.row(payload["run_id"]) for d in deliveries])
        except Exception as exc:  # noqa: BLE001 - the run has ended; its notification record is best effort
            echo(f"could not record webhook deliveries in {lake.uri}: {exc}")
    return deliveries
