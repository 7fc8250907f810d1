"""Prometheus metrics of one app instance (its own registry, so several apps can live in a process).

Every series carries a ``replica`` label (host:pid): with several Serve replicas behind one address,
a scrape of ``/metrics`` is answered by one of them, and the label keeps their series apart.
"""

from __future__ import annotations

import os
import socket
import time
from typing import Any, Awaitable, Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

__all__ = ["Metrics"]

_BUCKETS = (0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0)


class _Replica:
    """A metric whose ``labels(...)`` puts the replica's label first (and, without other labels, is the
    labelled child itself: ``.set``, ``.inc``, ``.observe``)."""

    def __init__(self, metric: Any, replica: str):
        self._metric, self._replica = metric, replica

    def labels(self, *values: str) -> Any:
        return self._metric.labels(self._replica, *values)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._metric.labels(self._replica), name)


class Metrics:
    def __init__(self, replica: str | None = None) -> None:
        self.replica = replica or f"{socket.gethostname()}:{os.getpid()}"
        self.registry = CollectorRegistry()
        r = self.registry

        def bound(kind: Any, name: str, doc: str, labels: tuple[str, ...] = (), **kw: Any) -> _Replica:
            return _Replica(kind(name, doc, ["replica", *labels], registry=r, **kw), self.replica)

        self.requests = bound(Counter, "vidlake_http_requests_total", "HTTP requests.", ("route", "method", "status"))
        self.latency = bound(Histogram, "vidlake_http_request_seconds", "HTTP request latency.", ("route",),
                             buckets=_BUCKETS)
        self.searches = bound(Histogram, "vidlake_search_seconds", "Search latency inside the app.", ("mode",),
                              buckets=_BUCKETS)
        self.thumbnails = bound(Counter, "vidlake_thumbnails_total", "Thumbnails served.", ("cache",))
        self.index_stale = bound(Gauge, "vidlake_index_stale", "1 when the lake changed since the index was built.")
        self.index_rows = bound(Gauge, "vidlake_index_rows", "Rows per index table.", ("table",))

    def render(self) -> bytes:
        return generate_latest(self.registry)

    def middleware(self, app: Callable[..., Awaitable[None]]) -> Callable[..., Awaitable[None]]:
        """ASGI middleware counting every HTTP request by route template (not raw path) and status."""

        async def wrapped(scope: dict, receive: Any, send: Any) -> None:
            if scope["type"] != "http":
                await app(scope, receive, send)
                return
            status = {"code": 500}
            started = time.perf_counter()

            async def send_status(message: dict) -> None:
                if message["type"] == "http.response.start":
                    status["code"] = message["status"]
                await send(message)

            try:
                await app(scope, receive, send_status)
            finally:
                route = getattr(scope.get("route"), "path", None) or "unmatched"
                self.requests.labels(route, scope["method"], str(status["code"])).inc()
                self.latency.labels(route).observe(time.perf_counter() - started)

        return wrapped
