"""Admin API for editions: start a send, watch its progress, pause or cancel it."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi import Path as FastAPIPath
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from newsletter.archive import operators
from newsletter.database.models import utcnow
from newsletter.editions import service
from newsletter.editions.builder import open_edition
from newsletter.editions.trial import dry_run
from newsletter.engagement import stats as engagement
from newsletter.web.auth import AdminDep
from newsletter.web.bodies import decode_json
from newsletter.web.deps import ContextDep

# Edition ids are 32-bit integers in the database: anything else is a 422, not a database error.
EditionId = Annotated[int, FastAPIPath(ge=1, le=2**31 - 1, description="The edition's id.")]

router = APIRouter(prefix="/api/editions", tags=["editions"], dependencies=[AdminDep])


class StartEdition(BaseModel):
    model_config = ConfigDict(extra="forbid")

    newsletter: str | None = Field(default=None, description="Newsletter id; default: the first configured.")
    dry_run: bool = Field(default=False, description="Render and count only: nothing recorded or sent.")
    new: bool = Field(default=False, description="Another edition even if today's exists.")


@router.post(
    "",
    status_code=202,
    responses={
        200: {"description": "dry run: what would be sent"},
        422: {"description": "unknown newsletter, or a body that is not a StartEdition"},
    },
    openapi_extra={
        "requestBody": {
            "required": False,
            "content": {"application/json": {"schema": StartEdition.model_json_schema()}},
        }
    },
)
async def start(request: Request, context: ContextDep) -> JSONResponse:
    """Start today's edition now (or continue today's): recorded at once (202 with its id, status
    `building`); the workers build and deliver it."""
    body = await _start_request(request)
    newsletter = context.settings.find_newsletter(body.newsletter)
    if body.dry_run:
        planned = await dry_run(context, newsletter.id)
        return JSONResponse({"dry_run": True, "variants": [asdict(p) for p in planned]}, status_code=200)
    # The intent only: a worker (or the scheduler) builds and sends it; no request holds a build.
    edition, created = await open_edition(context, newsletter, now=utcnow(), trigger="api", new=body.new)
    return JSONResponse(
        {
            "id": edition.id,
            "newsletter": newsletter.id,
            "date": edition.edition_date.isoformat(),
            "created": created,
            "status": edition.status,
        },
        status_code=202,
        headers={"Location": f"/api/editions/{edition.id}"},
    )


async def _start_request(request: Request) -> StartEdition:
    """The body read as strictly as the other JSON bodies (nesting, repeated keys); empty: defaults."""
    raw = await request.body()
    try:
        return StartEdition.model_validate(decode_json(raw) if raw.strip() else {})
    except ValidationError as exc:
        raise RequestValidationError(exc.errors()) from None


@router.get("")
async def list_editions(
    context: ContextDep, limit: Annotated[int, Query(ge=1, le=500)] = 50
) -> list[dict[str, Any]]:
    return [r.as_json() for r in await service.list_reports(context, limit=limit)]


@router.get("/{edition_id}", responses={404: {"description": "no such edition"}})
async def show(edition_id: EditionId, context: ContextDep) -> dict[str, Any]:
    """An edition's status and its deliveries counted by status."""
    return (await service.report(context, edition_id)).as_json()


@router.get(
    "/{edition_id}/deliveries",
    responses={404: {"description": "no such edition"}, 422: {"description": "an unknown status"}},
)
async def deliveries(
    edition_id: EditionId,
    context: ContextDep,
    status: Annotated[
        str, Query(description=f"One of: {', '.join(service.LISTABLE)} (bounced: failed as a bounce).")
    ] = "failed",
    page: Annotated[int, Query(ge=1, le=2**31 - 1)] = 1,
    per_page: Annotated[int, Query(ge=1, le=1000)] = 50,
) -> dict[str, Any]:
    """An edition's deliveries in one status, most recently changed first, a page at a time:
    address, attempts, the last SMTP reply, the relay and when."""
    listed = await service.deliveries(context, edition_id, status=status, page=page, per_page=per_page)
    return listed.as_json()


@router.post("/{edition_id}/resume", responses={404: {"description": "no such edition"}})
async def resume(edition_id: EditionId, context: ContextDep) -> dict[str, Any]:
    return (await service.resume(context, edition_id)).as_json()


@router.post("/{edition_id}/cancel", responses={404: {"description": "no such edition"}})
async def cancel(edition_id: EditionId, context: ContextDep) -> dict[str, Any]:
    return (await service.cancel(context, edition_id)).as_json()


@router.delete("/{edition_id}/archive", responses={404: {"description": "no such edition"}})
async def unpublish(edition_id: EditionId, request: Request, context: ContextDep) -> dict[str, Any]:
    """Take the edition off the web archive (its page, index row and feed entry), at once."""
    state = await operators.unpublish(context, edition_id)
    request.app.state.archive.cache.clear()
    return state.as_json()


@router.put("/{edition_id}/archive", responses={404: {"description": "no such edition"}})
async def republish(edition_id: EditionId, request: Request, context: ContextDep) -> dict[str, Any]:
    """Put an edition taken off the web archive back."""
    state = await operators.republish(context, edition_id)
    request.app.state.archive.cache.clear()
    return state.as_json()


@router.get("/{edition_id}/stats", responses={404: {"description": "no such edition"}})
async def stats(edition_id: EditionId, context: ContextDep) -> dict[str, Any]:
    """Readers' clicks on the edition's articles (per article and section), its click rate over
    delivered messages, what the filter counted apart and when clicks came."""
    return (await engagement.edition_stats(context, edition_id)).as_json()
