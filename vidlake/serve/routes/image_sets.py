"""GET /sets, /sets/{id}, /sets/{id}/timeline and /sets/{id}/thumbnail: image sets beside the videos.

A set's outputs live in the lake under ``video_id`` = its ``set_id``, with times in seconds after its first
capture; its images sit at those times. These routes mirror ``/videos``: the timeline is the same answer,
and the thumbnail is the set's image nearest ``t`` (or the one ``image`` names), upright.
"""

from __future__ import annotations

from fastapi import APIRouter, Query, Request, Response

from vidlake.index.documents import nearest_image, set_images
from vidlake.serve.models import VIDEO_ID, SetDetail, SetList, TimelineResponse
from vidlake.serve.routes.common import ERRORS, SID, T_FROM, T_TO, ApiError, Service, root
from vidlake.serve.routes.common import timeline as timeline_of

__all__ = ["router"]


def router(service: Service) -> APIRouter:
    api = APIRouter(dependencies=service.data, responses=ERRORS)
    state = service.state

    def summary(row: dict, base: str) -> dict:
        images = [{**image, "thumbnail_url": f"{base}/sets/{row['set_id']}/thumbnail?image={image['image_id']}"}
                  for image in set_images(row)]
        return {**row, "images": images}

    @api.get("/sets", response_model=SetList)
    async def sets(request: Request, offset: int = Query(0, ge=0), limit: int = Query(100, ge=1, le=1000)) -> dict:
        rows = list(state.ready().sets.values())
        base = root(request)
        return {"total": len(rows), "offset": offset, "sets": [summary(r, base) for r in rows[offset:offset + limit]]}

    @api.get("/sets/{set_id}", response_model=SetDetail)
    async def image_set(request: Request, set_id: str = SID) -> dict:
        row = service.set_of(set_id)
        tasks = await service.blocking(state.ready().tasks, set_id)
        base = root(request)
        return {**summary(row, base), "tasks": tasks, "thumbnail_url": f"{base}/sets/{set_id}/thumbnail?t=0"}

    @api.get("/sets/{set_id}/timeline", response_model=TimelineResponse)
    async def timeline(set_id: str = SID, t_from: float | None = T_FROM, t_to: float | None = T_TO,
                       limit: int = Query(2000, ge=1, le=20000)) -> dict:
        return await timeline_of(service, set_id, service.set_of(set_id), t_from, t_to, limit)

    @api.get("/sets/{set_id}/thumbnail", response_class=Response,
             responses={200: {"content": {"image/jpeg": {}}}})
    async def thumbnail(set_id: str = SID,
                        t: float | None = Query(None, ge=0, allow_inf_nan=False,
                                                description="Seconds after the first capture: the image nearest "
                                                            "it (the first when none is given)."),
                        image: str | None = Query(None, pattern=VIDEO_ID, description="This image of the set instead."),
                        w: int = Query(service.settings.serve.thumbnail_width, ge=16, le=1920,
                                       description="Width, pixels."),
                        overlay: bool = Query(False, description="Draw the points and boxes on the image.")) -> Response:
        row = service.set_of(set_id)
        if t is not None and image is not None:
            raise ApiError(422, "give t or image, not both")
        if image is not None:
            if image not in row["image_ids"]:
                raise ApiError(404, f"image {image} is not in image set {set_id}")
            index = row["image_ids"].index(image)
        elif t is not None and t > row["duration_s"]:
            raise ApiError(422, f"t={t} is outside the image set (0 .. {row['duration_s']:.3f} s)")
        else:
            index = nearest_image(row, t or 0.0)
        marks = None
        if overlay:
            at, image_id = row["image_times_s"][index], row["image_ids"][index]
            samples = await service.blocking(state.ready().samples, [(set_id, at, at)])
            marks = [s for s in samples if s["image_id"] == image_id]
        return await service.thumbnail(service.thumbs.get_image, row, index, w, marks)

    return api
