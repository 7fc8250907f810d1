"""GET /healthz (always 200, open) and GET /metrics (Prometheus, behind the API key when there is one)."""

from __future__ import annotations

from fastapi import APIRouter, Response

from vidlake.serve.models import Health
from vidlake.serve.routes.common import Service

__all__ = ["router"]


def router(service: Service) -> APIRouter:
    api = APIRouter()
    state, metrics = service.state, service.metrics

    @api.get("/healthz", response_model=Health)
    async def healthz() -> dict:
        state.maybe_refresh()
        if state.missing_reason:
            return {"status": "degraded", "index": "missing", "message": state.missing_reason}
        if state.stale_reason:
            return {"status": "degraded" if not service.settings.serve.allow_stale else "ok", "index": "stale",
                    "message": state.stale_reason}
        return {"status": "ok", "index": "ready"}

    @api.get("/metrics", response_class=Response, dependencies=service.data)
    async def prometheus() -> Response:
        metrics.index_stale.set(1 if state.stale_reason else 0)
        for table, rows in (state.meta.rows if state.meta else {}).items():
            metrics.index_rows.labels(table).set(rows)
        return Response(metrics.render(), media_type="text/plain; version=0.0.4")

    return api
