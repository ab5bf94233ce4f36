"""Tracked links: `/r/{token}` (and `/r/{token}/{reader}` for per-reader tracking) count a
click and answer 302 to the article's stored URL; `/r/open/{reader}.gif` is the per-reader open
pixel. A forged, truncated or foreign token is a 404 and counts nothing; an article deleted
since is a 410 pointing at the edition's page."""

from __future__ import annotations

from collections.abc import Sequence

from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.exceptions import HTTPException

from newsletter.engagement.redirects import ClickDesk
from newsletter.web.pages import Pages

router = APIRouter(include_in_schema=False)
# A transparent 1x1 GIF.
PIXEL = bytes.fromhex(
    "47494638396101000100800000000000ffffff21f90401000000002c00000000010001000002024401003b"
)
NO_STORE = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
}


def _desk(request: Request) -> ClickDesk:
    desk: ClickDesk | None = getattr(request.app.state, "clicks", None)
    if desk is None:
        desk = request.app.state.clicks = ClickDesk(request.app.state.context)
    return desk


# Plain Starlette routes, not FastAPI's: a redirect is answered thousands of times a minute
# after a send, and FastAPI's request handling (dependency solving, even for a route that takes
# the request alone) costs as much as the click's own work. Each sets `scope["route"]` itself,
# as FastAPI would, for the error logs' route template. GET and HEAD both, as before (Starlette
# adds HEAD to GET anyway); any other method is a 405.
async def open_pixel(request: Request) -> Response:
    request.scope["route"] = OPEN_PIXEL
    await _desk(request).opened(request.path_params["reader"], request.method, request.headers)
    return Response(PIXEL, media_type="image/gif", headers=NO_STORE)


async def follow(request: Request) -> Response:
    request.scope["route"] = FOLLOW
    return await _follow(request, None)


async def follow_per_reader(request: Request) -> Response:
    request.scope["route"] = FOLLOW_PER_READER
    return await _follow(request, request.path_params["reader"])


for _path, _endpoint in (
    # The token route first: the one clicked most. The pixel's before the per-reader link's,
    # which would take its paths too.
    ("/r/{token}", follow),
    ("/r/open/{reader}.gif", open_pixel),
    ("/r/{token}/{reader}", follow_per_reader),
):
    router.add_route(_path, _endpoint, methods=["GET", "HEAD"], include_in_schema=False)
FOLLOW, OPEN_PIXEL, FOLLOW_PER_READER = router.routes


async def _follow(request: Request, reader: str | None) -> Response:
    scope = request.scope
    client = scope["client"][0] if scope.get("client") else "unknown"
    desk = _desk(request)
    followed = await desk.follow(
        scope["path_params"]["token"], reader, scope["method"], _headers(scope["headers"]), client
    )
    if followed is None:
        raise HTTPException(404)
    if not followed.url:
        pages: Pages = request.app.state.pages
        return pages.error(
            410,
            "This story is no longer here",
            "The article this link led to has been taken down.",
            elsewhere=followed.elsewhere,
            elsewhere_label="See the rest of the edition"
            if "/archive/" in followed.elsewhere
            else "Go to the site",
        )
    return _Redirect(followed.url)


def _headers(raw: Sequence[tuple[bytes, bytes]]) -> dict[str, str]:
    """The request's headers as `request.headers` reads them (the first of a repeated name),
    in a plain dict: the click reads several of them, and each `Headers.get` scans the list."""
    return {name.decode("latin-1"): value.decode("latin-1") for name, value in reversed(raw)}


# The 302's headers, encoded once a location (a link is clicked again and again after a send).
_REDIRECT_HEADERS: dict[str, tuple[tuple[bytes, bytes], ...]] = {}
REDIRECT_HEADERS_KEPT = 4096


class _Redirect(Response):
    """`Response(status_code=302, headers={**NO_STORE, "Location": url})`, its headers encoded
    once for each location rather than on every answer."""

    def __init__(self, url: str) -> None:
        self.status_code = 302
        self.background = None
        self.body = b""
        raw = _REDIRECT_HEADERS.get(url)
        if raw is None:
            if len(_REDIRECT_HEADERS) >= REDIRECT_HEADERS_KEPT:
                _REDIRECT_HEADERS.clear()
            encoded = Response(status_code=302, headers={**NO_STORE, "Location": url}).raw_headers
            raw = _REDIRECT_HEADERS[url] = tuple(encoded)
        self.raw_headers = list(raw)
