"""The ways a web signup reaches the database (subscriptions.intake): the count and the signup on
SQLite's ledger thread, and PostgreSQL's one-statement signup of a new address
(subscriptions.oneshot), which writes exactly what the general path writes, and nothing at all for
an address it does not handle."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import Table, func, select

from newsletter.context import AppContext, open_context
from newsletter.database.models import Event, Message, Subscriber, Subscription
from newsletter.database.ratelimit import SharedRateLimiter
from newsletter.states import SuppressionReason
from newsletter.subscriptions.addresses import normalise_address
from newsletter.subscriptions.audit import Actor
from newsletter.subscriptions.choices import Choices
from newsletter.subscriptions.intake import count_and_store
from newsletter.subscriptions.oneshot import EVENTS, MESSAGES, SUBSCRIBERS, SUBSCRIPTIONS
from newsletter.subscriptions.signup import SignupOutcome, SignupRequest, sign_up, sign_up_new
from newsletter.subscriptions.suppressions import suppress
from tests.conftest import SettingsFactory

POSTGRES_ONLY = pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
NOW = datetime(2026, 12, 1, 9, 30, tzinfo=UTC)
ACTOR = Actor.web("198.51.100.4", "Mozilla/5.0 test")
TWO_NEWSLETTERS = [
    {"id": "daily", "name": "The Daily Briefing", "sections": ["World", "Business"]},
    {"id": "weekly", "name": "The Week in Review", "sections": []},
]
# What differs between two readers' rows by nature.
OWN = {"id", "email", "email_key", "token_nonce", "subscriber_id"}


def wanted(email: str, choices: Choices) -> SignupRequest:
    return SignupRequest(normalise_address(email), choices, "Europe/Paris")


async def one_statement(context: AppContext, request: SignupRequest) -> SignupOutcome | None:
    async with context.db.engine.connect() as conn:
        await conn.execution_options(isolation_level="AUTOCOMMIT")
        async with conn.begin():
            return await conn.run_sync(
                lambda sync: sign_up_new(
                    sync, settings=context.settings, request=request, actor=ACTOR, now=NOW
                )
            )


async def general(context: AppContext, request: SignupRequest) -> SignupOutcome:
    async with context.db.engine.begin() as conn:
        return await conn.run_sync(
            lambda sync: sign_up(sync, settings=context.settings, request=request, actor=ACTOR, now=NOW)
        )


async def written(context: AppContext, subscriber_id: int) -> dict[str, list[dict[str, Any]]]:
    """Every row of the subscriber's signup, without what is its own (ids, address, nonce)."""
    found: dict[str, list[dict[str, Any]]] = {}
    async with context.db.engine.connect() as conn:
        for table, owner in (
            (SUBSCRIBERS, "id"),
            (SUBSCRIPTIONS, "subscriber_id"),
            (MESSAGES, "subscriber_id"),
        ):
            found[table.name] = await _rows(conn, table, table.c[owner] == subscriber_id)
        found["events"] = await _rows(conn, EVENTS, EVENTS.c.subscriber_id == subscriber_id)
    return found


async def _rows(conn: Any, table: Table, where: Any) -> list[dict[str, Any]]:
    rows = (await conn.execute(select(table).where(where))).mappings().all()
    shown = [{k: v for k, v in row.items() if k not in OWN} for row in rows]
    return sorted(shown, key=repr)


@POSTGRES_ONLY
@pytest.mark.parametrize(
    ("double_opt_in", "choices"),
    [
        (True, {"daily": []}),
        (True, {"daily": ["World", "Business"], "weekly": []}),
        (False, {"weekly": []}),
    ],
)
async def test_the_one_statement_signup_writes_what_the_general_path_writes(
    make_settings: SettingsFactory, double_opt_in: bool, choices: Choices
) -> None:
    settings = make_settings(newsletters=TWO_NEWSLETTERS, subscriptions={"double_opt_in": double_opt_in})
    async with open_context(settings) as context:
        fast = await one_statement(context, wanted("Fast@Example.com", choices))
        slow = await general(context, wanted("Slow@Example.com", choices))
        assert fast is not None
        assert (
            (fast.status, fast.new)
            == (slow.status, slow.new)
            == ("pending" if double_opt_in else "active", True)
        )
        fast_rows, slow_rows = (
            await written(context, fast.subscriber_id),
            await written(context, slow.subscriber_id),
        )
        async with context.db.session() as session:
            nonces = set((await session.scalars(select(Subscriber.token_nonce))).all())
    assert fast_rows == slow_rows
    assert len(fast_rows["subscriptions"]) == len(choices)
    assert len(fast_rows["messages"]) == (1 if double_opt_in else 0)
    assert len(fast_rows["events"]) == 1
    assert len(nonces) == 2 and None not in nonces  # each reader its own, as the model's default gives


@POSTGRES_ONLY
@pytest.mark.parametrize("history", ["known", "erased", "complaint", "manual"])
async def test_the_one_statement_signup_writes_nothing_for_a_known_or_suppressed_address(
    context: AppContext, history: str
) -> None:
    request = wanted("reader@example.com", {"daily": []})
    if history == "known":
        await general(context, request)
    else:
        async with context.db.engine.begin() as conn:
            await suppress(conn, request.address.key, SuppressionReason(history))
    before = await _counts(context)

    assert await one_statement(context, request) is None
    assert await _counts(context) == before


async def _counts(context: AppContext) -> list[int]:
    async with context.db.session() as session:
        return [
            int(await session.scalar(select(func.count()).select_from(model)) or 0)
            for model in (Subscriber, Subscription, Message, Event)
        ]


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_on_sqlite_the_one_statement_signup_leaves_it_to_the_general_path(context: AppContext) -> None:
    assert await one_statement(context, wanted("reader@example.com", {"daily": []})) is None
    assert await _counts(context) == [0, 0, 0, 0]


@pytest.mark.parametrize("ledger_thread", [True, False])
async def test_every_request_counts_and_only_allowed_ones_are_stored(
    context: AppContext, ledger_thread: bool
) -> None:
    used = context if ledger_thread else replace(context, writer=None, second_writer=None)
    limiter = SharedRateLimiter("signup", 3, key="test", clock=lambda: 1_000_000.0)

    async def store(client: str, email: str | None) -> int | None:
        request = wanted(email, {"daily": []}) if email else None
        return await count_and_store(used, limiter, client, request, ACTOR)

    invalid = await store("198.51.100.9", None)
    answers = [await store("198.51.100.9", f"r{n}@example.com") for n in range(3)]
    other = await store("198.51.100.10", "s@example.com")

    assert invalid is None and other is None
    assert answers[:2] == [None, None] and answers[2] is not None and 1 <= answers[2] <= 60
    async with context.db.session() as session:
        stored = set((await session.scalars(select(Subscriber.email_key))).all())
        owed = await session.scalar(select(func.count()).select_from(Message))
    assert stored == {"r0@example.com", "r1@example.com", "s@example.com"}
    assert owed == 3
