"""Prometheus metrics of one app instance (its own registry, so several apps can live in a process)."""

from __future__ import annotations

import time
from typing import Any, Awaitable, Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

__all__ = ["Metrics"]

_BUCKETS = (0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter("vidlake_http_requests_total", "HTTP requests.", ["route", "method", "status"],
                                registry=r)
        self.latency = Histogram("vidlake_http_request_seconds", "HTTP request latency.", ["route"],
                                 buckets=_BUCKETS, registry=r)
        self.searches = Histogram("vidlake_search_seconds", "Search latency inside the app.", ["mode"],
                                  buckets=_BUCKETS, registry=r)
        self.thumbnails = Counter("vidlake_thumbnails_total", "Thumbnails served.", ["cache"], registry=r)
        self.index_stale = Gauge("vidlake_index_stale", "1 when the lake changed since the index was built.",
                                 registry=r)
        self.index_rows = Gauge("vidlake_index_rows", "Rows per index table.", ["table"], registry=r)

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
