"""GET / (the web page, with a ``<base>`` for the route prefix it is served under) and /static/ (its
script and style sheet, from the package's static/ folder through Starlette's StaticFiles)."""

from __future__ import annotations

import html
from importlib import resources

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from starlette.staticfiles import StaticFiles

from vidlake.serve.routes.common import ApiError, root

__all__ = ["PageAssets", "router"]

_FOLDER = resources.files("vidlake.serve") / "static"
_ASSETS = frozenset({"app.js", "app.css"})


def router() -> APIRouter:
    api = APIRouter(include_in_schema=False)
    page = (_FOLDER / "index.html").read_text(encoding="utf-8")

    @api.get("/", response_class=HTMLResponse)
    async def index(request: Request) -> HTMLResponse:
        href = html.escape(root(request) + "/", quote=True)
        return HTMLResponse(page.replace("<head>", f'<head><base href="{href}">', 1))

    return api


class PageAssets(StaticFiles):
    """The page's assets. Only the names in a fixed list are looked up, so no request path reaches
    another file; any other name is a JSON 404 like every route's."""

    def __init__(self) -> None:
        super().__init__(directory=str(_FOLDER))

    async def get_response(self, path: str, scope):
        if path not in _ASSETS:
            raise ApiError(404, f"no static file {path!r}")
        return await super().get_response(path, scope)
