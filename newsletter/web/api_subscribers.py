"""Admin API for subscribers: list (paginated), add or import, erase."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response

from newsletter.database.engine import READ_ONLY
from newsletter.errors import InvalidInput
from newsletter.subscriptions.adding import EntryResult, Outcome, add_batch
from newsletter.subscriptions.addresses import normalise_address
from newsletter.subscriptions.audit import Actor
from newsletter.subscriptions.erasure import erase
from newsletter.subscriptions.forms import NewSubscriber, parse_entry
from newsletter.subscriptions.listing import MAX_PER_PAGE, check_status, count_subscribers, list_subscribers
from newsletter.web.auth import AdminDep
from newsletter.web.bodies import decode_json
from newsletter.web.deps import ContextDep, SessionDep, SettingsDep

router = APIRouter(prefix="/api/subscribers", tags=["subscribers"], dependencies=[AdminDep])

MAX_ITEMS = 1000


def _actor(request: Request) -> Actor:
    return Actor("api", request.client.host if request.client else None)


@router.get("")
async def list_(
    session: SessionDep,
    status: Annotated[
        str | None, Query(description="pending, active, unsubscribed, bounced or erased")
    ] = None,
    # Bounded so OFFSET (page × per_page) always fits the database's 64-bit integers.
    page: Annotated[int, Query(ge=1, le=10_000_000)] = 1,
    per_page: Annotated[int, Query(ge=1, le=MAX_PER_PAGE)] = 50,
) -> dict[str, Any]:
    """Subscribers, oldest first; erased ones only when asked for by status."""
    wanted = check_status(status)
    await session.connection(execution_options=READ_ONLY)
    total = await count_subscribers(session, status=wanted)
    views = await list_subscribers(session, status=wanted, page=page, per_page=per_page)
    return {
        "items": [view.as_json() for view in views],
        "total": total,
        "page": page,
        "per_page": per_page,
        "pages": (total + per_page - 1) // per_page,
    }


@router.post("")
async def add(
    request: Request,
    context: ContextDep,
    skip_invalid: Annotated[bool, Query(description="Store the valid items even if some are not.")] = False,
) -> dict[str, Any]:
    """One object or a list of at most 1000: {email, newsletters?, sections?, timezone?, confirmed?}.

    Any invalid item makes it a 422 naming the field (`items[2].email`) with nothing stored,
    unless `skip_invalid`: then each invalid item is reported as such.
    """
    payload = decode_json(await request.body())
    many = isinstance(payload, list)
    items = payload if many else [payload]
    if len(items) > MAX_ITEMS:
        raise InvalidInput("items", f"at most {MAX_ITEMS} per request")
    if not items:
        raise InvalidInput("items", "no subscriber given")
    parsed: list[NewSubscriber | InvalidInput] = []
    for index, item in enumerate(items):
        try:
            parsed.append(parse_entry(context.settings, item, f"items[{index}]." if many else ""))
        except InvalidInput as exc:
            if not skip_invalid:
                raise
            parsed.append(exc)
    entries = [p for p in parsed if isinstance(p, NewSubscriber)]
    async with context.db.session() as session, session.begin():
        stored = iter(
            await add_batch(session, settings=context.settings, entries=entries, actor=_actor(request))
        )
    results = [_result(p, next(stored) if isinstance(p, NewSubscriber) else None) for p in parsed]
    counts = {outcome.value: 0 for outcome in Outcome}
    for result in results:
        counts[result["result"]] += 1
    return {"results": results, **counts}


def _result(parsed: NewSubscriber | InvalidInput, stored: EntryResult | None) -> dict[str, Any]:
    if isinstance(parsed, InvalidInput):
        return {
            "email": None,
            "result": Outcome.INVALID.value,
            "field": parsed.field,
            "reason": parsed.message,
        }
    assert stored is not None
    result: dict[str, Any] = {"email": parsed.address.email, "result": stored.outcome.value}
    if stored.reason:
        result["reason"] = stored.reason
    return result


@router.delete(
    "/{email}", status_code=204, responses={404: {"description": "no subscriber has that address"}}
)
async def remove(email: str, request: Request, session: SessionDep, settings: SettingsDep) -> Response:
    """Erasure: personal data removed, a hashed suppression entry kept."""
    address = normalise_address(email, local_domains=settings.subscriptions.allow_local_domains)
    async with session.begin():
        await erase(session, address=address, actor=_actor(request))
    return Response(status_code=204)
