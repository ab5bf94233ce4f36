"""Admin API for what came back after sending: bounce events, and the suppression list."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response

from newsletter.bounces.queries import check_kind, check_source, list_bounces
from newsletter.database.engine import READ_ONLY
from newsletter.errors import InvalidInput
from newsletter.subscriptions.addresses import normalise_address
from newsletter.subscriptions.audit import Actor
from newsletter.subscriptions.suppressions import add_by_operator, lift, listed
from newsletter.web.auth import AdminDep
from newsletter.web.bodies import decode_json
from newsletter.web.deps import SessionDep, SettingsDep

router = APIRouter(prefix="/api", tags=["bounces"], dependencies=[AdminDep])

REASONS = ("complaint", "manual", "erased")
Limit = Annotated[int, Query(ge=1, le=1000)]
Offset = Annotated[int, Query(ge=0, le=10_000_000)]


@router.get("/bounces")
async def bounces(
    session: SessionDep,
    since: Annotated[datetime | None, Query(description="ISO time; only what came since")] = None,
    type: Annotated[str | None, Query(description="hard, soft, complaint or unknown")] = None,  # noqa: A002
    source: Annotated[str | None, Query(description="receiver, mailbox, ses, postmark, …")] = None,
    edition: Annotated[int | None, Query(ge=1, le=2**31 - 1)] = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> dict[str, Any]:
    """Bounces and complaints received after sending, newest first, with what each did."""
    check_kind(type)
    check_source(source)
    if since is not None and since.tzinfo is None:
        raise InvalidInput("since", "needs a timezone (…Z or +00:00)")
    await session.connection(execution_options=READ_ONLY)
    views = await list_bounces(
        session, since=since, kind=type, source=source, edition_id=edition, limit=limit, offset=offset
    )
    return {"items": [view.as_json() for view in views], "limit": limit, "offset": offset}


@router.get("/suppressions")
async def suppressions(
    session: SessionDep,
    reason: Annotated[str | None, Query(description="complaint, manual or erased")] = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> dict[str, Any]:
    """Addresses never mailed again, newest first; an erased one is kept only as its hash."""
    if reason is not None and reason not in REASONS:
        raise InvalidInput("reason", f"must be one of {', '.join(REASONS)}")
    entries = await listed(session, reason=reason, limit=limit, offset=offset)
    items = [entry.as_json() for entry in entries]
    return {"items": items, "limit": limit, "offset": offset}


_SUPPRESS_BODY = {
    "type": "object",
    "required": ["email"],
    "properties": {"email": {"type": "string", "description": "the address never to mail again"}},
}


@router.post(
    "/suppressions",
    status_code=201,
    responses={422: {"description": "no usable address; `field` names what is wrong"}},
    openapi_extra={
        "requestBody": {"required": True, "content": {"application/json": {"schema": _SUPPRESS_BODY}}}
    },
)
async def suppress(request: Request, session: SessionDep, settings: SettingsDep) -> dict[str, Any]:
    """{"email": …}: never mail it again; a subscriber who has it is unsubscribed at once."""
    payload = decode_json(await request.body())
    if not isinstance(payload, dict) or "email" not in payload:
        raise InvalidInput("email", "is required")
    address = normalise_address(payload["email"], local_domains=settings.subscriptions.allow_local_domains)
    actor = Actor("api", request.client.host if request.client else None)
    async with session.begin():
        added = await add_by_operator(session, address, actor=actor)
    return {"email": address.key, "added": added}


@router.delete("/suppressions/{email}", status_code=204, responses={404: {"description": "not suppressed"}})
async def unsuppress(email: str, session: SessionDep, settings: SettingsDep) -> Response:
    """Lift a suppression; the reader is not re-subscribed (they may sign up again)."""
    address = normalise_address(email, local_domains=settings.subscriptions.allow_local_domains)
    async with session.begin():
        await lift(session, address)
    return Response(status_code=204)
