"""The sender's hot path kept exact: per-message statements written as Connection.execute would
write them, tokens and Message-IDs as the generic code makes them, replies and their timeouts
read right, and the ledger thread's hand-off."""

from __future__ import annotations

import asyncio
import base64
import hmac
from datetime import timedelta
from typing import Any

import pytest
from itsdangerous import Signer, TimestampSigner
from sqlalchemy import select
from sqlalchemy.exc import DBAPIError

from newsletter.config import Settings
from newsletter.context import AppContext
from newsletter.database.models import Delivery, utcnow
from newsletter.database.writer import LedgerWriter
from newsletter.delivery.queues import _parameters
from newsletter.delivery.smtp.errors import SmtpConnectionLost, SmtpTimeout
from newsletter.delivery.smtp.protocol import Replies
from newsletter.delivery.store import LEDGER
from newsletter.delivery.work import Action, Result, WorkKind
from newsletter.personal.recipients import PersonalMail, make_message_id
from newsletter.personal.tokens import LinkOwner, Purpose, TokenSigner
from tests.support.editions import EditionFactory

WRITTEN = (
    *("status", "attempts", "next_attempt_at", "lease_owner", "lease_expires_at", "last_code"),
    *("last_reply", "message_id", "relay", "bounce", "sent_at", "updated_at", "attempt_started_at"),
)


async def test_per_message_statements_write_what_connection_execute_writes(
    context: AppContext, edition_for: EditionFactory
) -> None:
    edition = await edition_for(8)
    now, later = utcnow(), utcnow() + timedelta(minutes=3)
    async with context.db.engine.begin() as conn:
        items = await conn.run_sync(
            LEDGER.claim_digests, (edition.id, "daily"), owner="w", limit=8, now=now, lease=timedelta(60)
        )
    fast, generic = items[0::2], items[1::2]
    outcomes = [
        (Action.SENT, 250, "250 ok", "<a@b>", None, False, "smtp"),
        (Action.RETRY, 451, "451 later", "<c@d>", later, False, "smtp"),
        (Action.FAILED, 550, "550 no such user", "<e@f>", None, True, "smtp"),
        (Action.RELEASED, None, None, None, later, False, None),
    ]

    def write(conn: Any) -> None:
        for pair, outcome in zip(zip(fast, generic, strict=True), outcomes, strict=True):
            ours, theirs = (_parameters(Result(item, *outcome), "w", now) for item in pair)
            assert LEDGER.digests._record.executemany(conn, [ours]) == 1
            conn.execute(LEDGER.digests._record.statement, [theirs])

    async with context.db.engine.begin() as conn:
        await conn.run_sync(write)
    rows = {d.id: d for d in await _rows(context, edition.id)}
    for ours, theirs in zip(fast, generic, strict=True):
        assert [getattr(rows[ours.id], c) for c in WRITTEN] == [getattr(rows[theirs.id], c) for c in WRITTEN]


async def test_a_start_mark_on_a_row_no_longer_held_comes_back(
    context: AppContext, edition_for: EditionFactory
) -> None:
    edition = await edition_for(3)
    async with context.db.engine.begin() as conn:
        items = await conn.run_sync(
            LEDGER.claim_digests, (edition.id, "daily"), owner="w", limit=3, now=utcnow(), lease=timedelta(60)
        )
        await conn.run_sync(LEDGER.requeue_owners, ["w"], now=utcnow())
        back = await conn.run_sync(LEDGER.mark_started, items[:1], owner="w", now=utcnow())
    assert back == {(WorkKind.DIGEST, items[0].id)}


async def _rows(context: AppContext, edition_id: int) -> list[Delivery]:
    async with context.db.session() as session:
        return list((await session.scalars(select(Delivery).where(Delivery.edition_id == edition_id))).all())


# -- tokens and Message-IDs --------------------------------------------------------------------


def test_tokens_are_what_itsdangerous_signs_and_verify() -> None:
    signer = TokenSigner("a secret key", {Purpose.CONFIRM: 60, Purpose.PREFERENCES: 60})
    reference: dict[Purpose, Signer] = {
        Purpose.UNSUBSCRIBE: Signer("a secret key", salt="newsletter.unsubscribe"),
        Purpose.CONFIRM: TimestampSigner("a secret key", salt="newsletter.confirm"),
    }
    preferences_signer = TimestampSigner("a secret key", salt="newsletter.preferences")
    for subscriber_id in (1, 42, 10**17):
        owner = LinkOwner(subscriber_id, "0123456789AB")
        for purpose, newsletter in ((Purpose.UNSUBSCRIBE, "daily"), (Purpose.CONFIRM, None)):
            ours = signer.sign(purpose, owner, newsletter)
            payload = f"{subscriber_id}.0123456789AB" + (f".{newsletter}" if newsletter else "")
            assert reference[purpose].unsign(ours).decode() == payload
            data = signer.verify(purpose, ours)
            assert (data.subscriber_id, data.nonce, data.newsletter_id) == (
                subscriber_id,
                owner.nonce,
                newsletter,
            )
        assert signer.sign(Purpose.UNSUBSCRIBE, owner) == reference[Purpose.UNSUBSCRIBE].sign(
            f"{subscriber_id}.0123456789AB"
        ).decode("ascii")
        preferences = signer.sign(Purpose.PREFERENCES, owner)
        unsigned = preferences_signer.unsign(preferences, max_age=60)
        assert unsigned.decode() == f"{subscriber_id}.0123456789AB"


def test_message_ids_are_the_keyed_hash_of_their_label(settings: Settings) -> None:
    key = settings.security.secret_key.get_secret_value().encode()

    def expected(label: str) -> str:
        digest = hmac.new(key, b"message-id\0" + label.encode(), "sha256").digest()
        return f"<{label}.{base64.b32encode(digest[:5]).decode().lower()}@{settings.smtp.sender_domain}>"

    personal = PersonalMail(settings)
    for edition_id, subscriber_id in ((1, 1), (7, 123456), (2**31, 10**12)):
        owner = LinkOwner(subscriber_id, "0123456789AB")
        digest = personal.digest(owner, "r@readers.example", "daily", edition_id, 1)
        assert digest.message_id == expected(f"e.{edition_id}.{subscriber_id}")
        assert digest.message_id == make_message_id(settings, "e", edition_id, subscriber_id)
    assert personal.confirmation(owner, "r@readers.example", None, 9).message_id == expected("c.9")
    with pytest.raises(ValueError):
        make_message_id(settings, "e", "no spaces")


# -- replies and their timeouts ----------------------------------------------------------------


class Wire:
    """A transport that keeps what is written and notes being dropped."""

    def __init__(self) -> None:
        self.aborted = False

    def abort(self) -> None:
        self.aborted = True

    def is_closing(self) -> bool:
        return self.aborted


async def test_replies_are_read_in_order_single_and_multiline_alike() -> None:
    wire = Wire()
    replies = Replies(wire)  # type: ignore[arg-type]
    futures = replies.expect(4, timeout=5)
    replies.data_received(b"250 2.1.0 Ok\r\n250-first\r\n250 second")
    assert [f.done() for f in futures] == [True, False, False, False]
    replies.data_received(b"\r\n250 2.1.0 Ok\r\n354 go ahead\r\n")
    assert [await f for f in futures] == [
        (250, "2.1.0 Ok"),
        (250, "first\nsecond"),
        (250, "2.1.0 Ok"),
        (354, "go ahead"),
    ]
    [late] = replies.expect(1, timeout=5)
    replies.data_received(b"xyz\r\n")
    with pytest.raises(SmtpConnectionLost, match="malformed"):
        await late
    assert wire.aborted


async def test_a_reply_overdue_drops_the_connection_but_timely_ones_do_not() -> None:
    wire = Wire()
    replies = Replies(wire)  # type: ignore[arg-type]
    # Replies that each come within the timeout, over longer than it in all, are not late.
    for _ in range(4):
        [future] = replies.expect(1, timeout=0.2)
        await asyncio.sleep(0.08)
        replies.data_received(b"250 Ok\r\n")
        assert await future == (250, "Ok")
    assert not wire.aborted
    first, second = replies.expect(2, timeout=0.2)
    replies.data_received(b"250 Ok\r\n")
    assert await first == (250, "Ok")
    with pytest.raises(SmtpTimeout):
        await asyncio.wait_for(second, timeout=2)
    assert wire.aborted
    [after] = replies.expect(1, timeout=0.2)
    with pytest.raises(SmtpConnectionLost):
        await after


# -- the ledger thread ---------------------------------------------------------------------------


async def test_the_ledger_thread_runs_transactions_in_order_and_hands_back_errors(settings: Settings) -> None:
    writer = LedgerWriter(settings.database)
    seen: list[int] = []

    def work(n: int) -> Any:
        def run(conn: Any) -> int:
            seen.append(n)
            if n == 3:
                raise ValueError("refused")
            return n * 10

        return run

    done = await asyncio.gather(*(writer.transaction(work(n)) for n in range(6)), return_exceptions=True)
    assert seen == list(range(6))
    assert done[:3] == [0, 10, 20] and isinstance(done[3], ValueError) and done[4:] == [40, 50]
    assert await writer.transaction(lambda conn: conn.exec_driver_sql("SELECT 1").scalar()) == 1
    await writer.close()
    assert writer._thread is None


async def test_a_relaxed_ledger_writer_commits_without_waiting_for_the_wal_flush(
    settings: Settings, context: AppContext
) -> None:
    if context.db.dialect != "postgresql":
        pytest.skip("synchronous_commit is PostgreSQL's")

    def setting(conn: Any) -> str:
        return str(conn.exec_driver_sql("SHOW synchronous_commit").scalar())

    def broken(conn: Any) -> None:
        conn.exec_driver_sql("SELECT pg_terminate_backend(pg_backend_pid())")

    relaxed, strict = (
        LedgerWriter(settings.database, relaxed_durability=True),
        LedgerWriter(settings.database),
    )
    try:
        assert await relaxed.transaction(setting) == "off"
        assert await strict.transaction(setting) == "on"
        # A connection lost and opened again is relaxed again.
        with pytest.raises(DBAPIError):
            await relaxed.transaction(broken)
        assert await relaxed.transaction(setting) == "off"
    finally:
        await relaxed.close()
        await strict.close()
