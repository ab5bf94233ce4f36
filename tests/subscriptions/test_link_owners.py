"""A link acts only for the subscriber it was sent to: ids are never handed out twice, and every
link carries the subscriber's own nonce besides the id.

Before: on SQLite an expired signup's id went to the next signup, tokens carried only the id,
and with `confirm_max_age_days` above `pending_expiry_days` an old confirm link confirmed the
later reader and showed their address."""

from __future__ import annotations

from datetime import timedelta

import httpx
from sqlalchemy import update

from newsletter.config import Settings
from newsletter.context import AppContext
from newsletter.database.models import Subscriber, utcnow
from newsletter.personal.links import Links
from newsletter.personal.tokens import LinkOwner
from newsletter.subscriptions.erasure import expire_pending
from tests.subscriptions.helpers import confirm_token_signed_at, owner, signed_at, subscriber
from tests.web.test_pages_links import ONE_CLICK, path


async def signed_up(client: httpx.AsyncClient, context: AppContext, email: str) -> Subscriber:
    assert (await client.post("/subscribe", json={"email": email})).status_code == 202
    stored = await subscriber(context, email)
    assert stored is not None
    return stored


async def forget(context: AppContext, settings: Settings, subscriber_id: int) -> None:
    async with context.db.session() as session, session.begin():
        await session.execute(
            update(Subscriber)
            .where(Subscriber.id == subscriber_id)
            .values(updated_at=utcnow() - timedelta(days=settings.subscriptions.pending_expiry_days + 1))
        )
        assert await expire_pending(session, settings=settings) == 1


async def test_the_id_of_a_forgotten_signup_is_never_given_again(
    client: httpx.AsyncClient, context: AppContext, settings: Settings
) -> None:
    first = await signed_up(client, context, "first@example.com")
    await forget(context, settings, first.id)
    second = await signed_up(client, context, "second@example.com")
    assert second.id > first.id
    assert second.token_nonce != first.token_nonce


async def test_a_link_with_another_subscribers_nonce_does_nothing(
    client: httpx.AsyncClient, context: AppContext, settings: Settings
) -> None:
    """Whatever hands out an id twice (an old database, a restore), the nonce tells them apart."""
    reader = await signed_up(client, context, "later.reader@example.com")
    someone_else = LinkOwner(reader.id, "0123456789AB")
    links = Links(settings)
    confirm = await client.get(path(links.confirm(someone_else), settings))
    assert confirm.status_code == 400 and "no longer valid" in confirm.text
    assert "later.reader" not in confirm.text
    token = confirm_token_signed_at(someone_else, seconds_ago=60)
    assert (await client.get(f"/confirm/{token}")).status_code == 400
    preferences = await client.get(path(links.preferences(someone_else), settings))
    assert preferences.status_code == 400 and "later.reader" not in preferences.text
    unsubscribe = await client.post(path(links.unsubscribe(someone_else), settings), **ONE_CLICK)
    assert unsubscribe.status_code == 400
    stored = await subscriber(context, "later.reader@example.com")
    assert stored is not None and stored.status == "pending"
    # The reader's own link still works.
    mine = await client.get(path(links.confirm(await owner(context, reader.id)), settings))
    assert mine.status_code == 200
    assert (await subscriber(context, "later.reader@example.com")).status == "active"  # type: ignore[union-attr]


async def test_a_confirm_link_older_than_its_subscriber_is_refused(
    client: httpx.AsyncClient, context: AppContext
) -> None:
    reader = await signed_up(client, context, "new@example.com")
    token = confirm_token_signed_at(await owner(context, reader.id), seconds_ago=3 * 86400)
    response = await client.get(f"/confirm/{token}")
    assert response.status_code == 400 and "no longer valid" in response.text


async def test_erasure_kills_every_link(
    client: httpx.AsyncClient, context: AppContext, settings: Settings, admin_headers: dict[str, str]
) -> None:
    reader = await signed_up(client, context, "leaving@example.com")
    before = await owner(context, reader.id)
    links = Links(settings)
    assert (await client.get(path(links.confirm(before), settings))).status_code == 200
    erased = await client.delete("/api/subscribers/leaving@example.com", headers=admin_headers)
    assert erased.status_code == 204
    for url in (links.preferences(before), links.unsubscribe(before, "daily")):
        assert (await client.get(path(url, settings))).status_code == 400


async def test_preferences_links_age_and_every_digest_brings_a_fresh_one(
    client: httpx.AsyncClient, context: AppContext, settings: Settings
) -> None:
    reader = await signed_up(client, context, "ageing@example.com")
    me = await owner(context, reader.id)
    payload = f"{me.subscriber_id}.{me.nonce}"
    days = settings.security.preferences_max_age_days
    fresh = signed_at("preferences", payload, (days - 1) * 86400)
    assert (await client.get(f"/preferences/{fresh}")).status_code == 200
    stale = signed_at("preferences", payload, (days + 1) * 86400)
    expired = await client.get(f"/preferences/{stale}")
    assert expired.status_code == 400 and "expired" in expired.text and "latest email" in expired.text
    # A preferences link from before links aged (no timestamp) reads as expired too.
    untimed = signed_at("preferences", str(me.subscriber_id), 0, timed=False)
    assert "expired" in (await client.get(f"/preferences/{untimed}")).text
    # Unsubscribe links never expire: one from a digest of long ago still works.
    old_digest = signed_at("unsubscribe", f"{payload}.daily", 0, timed=False)
    assert (await client.post(f"/unsubscribe/{old_digest}", **ONE_CLICK)).status_code == 200
    assert (await subscriber(context, "ageing@example.com")).status == "unsubscribed"  # type: ignore[union-attr]
