"""What every router of the search app works with: the ``Service`` (settings, the index state, metrics,
thumbnails, the thread pool), ``ApiError`` and the parameters several routes share."""

from __future__ import annotations

import asyncio
import functools
import hmac
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Callable

from fastapi import Depends, Header, Path, Query, Request, Response

from vidlake.platform.config import Settings
from vidlake.serve.metrics import Metrics
from vidlake.serve.models import SET_ID, VIDEO_ID, ErrorBody
from vidlake.serve.state import ServiceState
from vidlake.serve.thumbnails import Thumbnails

__all__ = ["ERRORS", "SID", "T_FROM", "T_TO", "VID", "ApiError", "Service", "root", "time_range", "timeline"]

ERRORS = {code: {"model": ErrorBody} for code in (400, 401, 404, 422, 503)}
VID = Path(pattern=VIDEO_ID, description="sha256 of the video's bytes (64 hex).")
SID = Path(pattern=SET_ID, description="The image set's id (16 hex).")
T_FROM = Query(None, ge=0, allow_inf_nan=False, description="Range start, seconds.")
T_TO = Query(None, ge=0, allow_inf_nan=False, description="Range end, seconds.")


class ApiError(Exception):
    """An error answered as JSON ``{"error": message}`` with ``status``."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status, self.message = status, message


@dataclass
class Service:
    """One app's parts, shared by its routers."""

    settings: Settings
    state: ServiceState
    metrics: Metrics
    thumbs: Thumbnails
    pool: ThreadPoolExecutor

    async def blocking(self, fn: Callable[..., Any], *args: Any) -> Any:
        """``fn(*args)`` on the app's threads (LanceDB, decoding), awaited."""
        return await asyncio.get_running_loop().run_in_executor(self.pool, functools.partial(fn, *args))

    @property
    def data(self) -> list:
        """The dependencies of a data route: the API key check when the service has a key (none otherwise,
        so an open service pays no per-request dependency)."""
        key = self.settings.serve.api_key
        if key is None:
            return []

        async def require_key(x_api_key: str | None = Header(None, description="Needed when the service has a key.")):
            if not (x_api_key and hmac.compare_digest(x_api_key, key.get_secret_value())):
                raise ApiError(401, "missing or wrong X-API-Key header")

        return [Depends(require_key)]

    def video_of(self, video_id: str) -> dict:
        """The ``videos`` row of ``video_id``, or a 404."""
        video = self.state.ready().videos.get(video_id)
        if video is None:
            raise ApiError(404, f"unknown video {video_id}")
        return video

    def set_of(self, set_id: str) -> dict:
        """The index's ``sets`` row of ``set_id``, or a 404."""
        image_set = self.state.ready().sets.get(set_id)
        if image_set is None:
            raise ApiError(404, f"unknown image set {set_id}")
        return image_set

    def media_of(self, media_id: str) -> dict:
        """The ``videos`` or ``sets`` row of ``media_id`` (a filter that takes either), or a 404."""
        row = self.state.ready().media(media_id)
        if row is None:
            raise ApiError(404, f"unknown video or image set {media_id}")
        return row

    async def thumbnail(self, render: Callable[..., tuple[bytes, bool]], *args: Any) -> Response:
        """The JPEG of ``render(*args)`` (``Thumbnails.get`` or ``get_image``, on the app's threads); 404 when
        no copy of the file is readable."""
        try:
            jpeg, cached = await self.blocking(render, *args)
        except FileNotFoundError as exc:
            raise ApiError(404, str(exc)) from None
        self.metrics.thumbnails.labels("hit" if cached else "miss").inc()
        return Response(jpeg, media_type="image/jpeg", headers={"Cache-Control": "public, max-age=86400"})


def time_range(t_from: float | None, t_to: float | None, media: dict | None = None) -> None:
    """422 when ``t_from`` is after ``t_to`` or past the end of ``media`` (a video's or a set's row)."""
    if t_from is not None and t_to is not None and t_from > t_to:
        raise ApiError(422, f"t_from ({t_from}) is after t_to ({t_to})")
    duration = (media or {}).get("duration_s")
    if duration is not None and t_from is not None and t_from > duration:
        end = "the image set's last image" if "set_id" in (media or {}) else "the end of the video"
        raise ApiError(422, f"t_from={t_from} is past {end} ({duration:.3f} s)")


async def timeline(service: "Service", media_id: str, media: dict, t_from: float | None, t_to: float | None,
                   limit: int) -> dict:
    """The timeline response of a video or an image set (``media``: its row), after the range checks."""
    time_range(t_from, t_to, media)
    events, truncated = await service.blocking(service.state.ready().timeline, media_id, t_from, t_to, limit)
    return {"video_id": media_id, "duration_s": media["duration_s"], "t_from": t_from, "t_to": t_to,
            "events": events, "truncated": truncated}


def root(request: Request) -> str:
    """The path the app is mounted under (Serve's route prefix), without a trailing slash."""
    return request.scope.get("root_path", "").rstrip("/")
