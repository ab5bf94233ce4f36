"""Tracked links: `/r/{token}` (and `/r/{token}/{reader}` for per-reader tracking) count a
click and answer 302 to the article's stored URL; `/r/open/{reader}.gif` is the per-reader open
pixel. A forged, truncated or foreign token is a 404 and counts nothing; an article deleted
since is a 410 pointing at the edition's page."""

from __future__ import annotations

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


# Routes take the request alone (like the archive's): a redirect is answered thousands of times
# a minute after a send, and FastAPI's parameter machinery would cost more than the answer.
@router.api_route("/r/open/{reader}.gif", methods=["GET", "HEAD"])
async def open_pixel(request: Request) -> Response:
    await _desk(request).opened(request.path_params["reader"], request.method, request.headers)
    return Response(PIXEL, media_type="image/gif", headers=NO_STORE)


@router.api_route("/r/{token}", methods=["GET", "HEAD"])
async def follow(request: Request) -> Response:
    return await _follow(request, None)


@router.api_route("/r/{token}/{reader}", methods=["GET", "HEAD"])
async def follow_per_reader(request: Request) -> Response:
    return await _follow(request, request.path_params["reader"])


async def _follow(request: Request, reader: str | None) -> Response:
    client = request.client.host if request.client else "unknown"
    desk = _desk(request)
    followed = await desk.follow(
        request.path_params["token"], reader, request.method, request.headers, client
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
    return Response(status_code=302, headers={**NO_STORE, "Location": followed.url})
