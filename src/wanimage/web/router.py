"""Serves the playground page at `/` and `/playground`, and its assets under `/playground/`.

The page is plain static files (no build step); it talks only to the public HTTP API with
URLs relative to the page, so it works behind a proxy prefix as well. No API key is needed to
load the page itself: the page asks for one when the API answers 401."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse

from ..errors import NotFound

STATIC = Path(__file__).resolve().parent / "static"
ASSETS = {
    "app.js": "text/javascript; charset=utf-8",
    "gallery.js": "text/javascript; charset=utf-8",
    "i18n.js": "text/javascript; charset=utf-8",
    "presets.js": "text/javascript; charset=utf-8",
    "app.css": "text/css; charset=utf-8",
    "favicon.png": "image/png",
}
NO_CACHE = {"Cache-Control": "no-cache"}  # revalidate: a server upgrade must not mix page and script


def web_router() -> APIRouter:
    router = APIRouter(include_in_schema=False)

    @router.get("/")
    @router.get("/playground")
    def page() -> FileResponse:
        return FileResponse(STATIC / "index.html", media_type="text/html; charset=utf-8", headers=NO_CACHE)

    @router.get("/favicon.ico")  # browsers ask for it on every page; a PNG is fine for all of them
    def favicon() -> FileResponse:
        return FileResponse(STATIC / "favicon.png", media_type="image/png", headers={"Cache-Control": "max-age=86400"})

    @router.get("/playground/presets")  # the header's link, offline (web/presets.py)
    def presets(request: Request) -> HTMLResponse:
        from .presets import presets_page

        presets, repos = request.app.state.service.presets()
        return HTMLResponse(presets_page(presets, repos), headers=NO_CACHE)

    @router.get("/playground/")
    def slash() -> RedirectResponse:
        return RedirectResponse("../playground", status_code=308)

    @router.get("/playground/{name}")
    def asset(name: str) -> FileResponse:
        media_type = ASSETS.get(name)
        if media_type is None:
            raise NotFound(f"no such playground file: {name}")
        return FileResponse(STATIC / name, media_type=media_type, headers=NO_CACHE)

    return router
