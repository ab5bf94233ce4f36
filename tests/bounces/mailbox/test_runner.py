"""run_scanner: mail that arrives while it idles is handled at once (IMAP IDLE), the database
going away costs a pause and nothing else, a bad setting is logged in one line, and setting
`stop` ends it."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import pytest

from newsletter.bounces.incoming import Incoming
from newsletter.bounces.mailbox import run_scanner
from newsletter.bounces.recorder import BounceRecorder, Recorded
from newsletter.context import AppContext
from newsletter.errors import DatabaseUnavailable
from tests.bounces.mailbox import samples
from tests.bounces.mailbox.conftest import (
    USER,
    WAIT_SECONDS,
    Readers,
    Reconfigure,
    event_count,
    events,
    eventually,
)
from tests.support.mta import Dovecot

HOUR = 3600  # the poll interval: far beyond any wait in these tests


@asynccontextmanager
async def running(context: AppContext, recorder: BounceRecorder) -> AsyncIterator[asyncio.Task[None]]:
    """run_scanner in a task; on the way out, `stop` set and the task's clean end awaited."""
    stop = asyncio.Event()
    task = asyncio.create_task(run_scanner(context, recorder, stop))
    try:
        yield task
    finally:
        stop.set()
        await asyncio.wait_for(task, WAIT_SECONDS)


def logged(caplog: pytest.LogCaptureFixture, event: str) -> list[dict[str, object]]:
    return [getattr(r, "event_fields", {}) for r in caplog.records if r.getMessage() == event]


def emptied(dovecot: Dovecot) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        return dovecot.stored(USER) == []

    return check


async def test_mail_arriving_during_idle_is_handled_without_waiting_for_the_poll(
    reading: Reconfigure, dovecot: Dovecot, readers: Readers, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    context = reading(poll_seconds=HOUR)
    dovecot.drop(USER, samples.delivered_to(readers.verp(0), samples.corpus(samples.HARD)))

    async with running(context, BounceRecorder(context)) as task:
        await eventually(emptied(dovecot), "the first message to be handled")
        dovecot.drop(USER, samples.delivered_to(readers.verp(1), samples.corpus(samples.COMPLAINT)))
        await eventually(emptied(dovecot), "the message dropped during IDLE to be handled")
        assert not task.done()

    assert task.done() and task.exception() is None
    assert [kind for kind, *_ in await events(context)] == ["hard", "complaint"]
    everything = "".join(r.getMessage() + repr(getattr(r, "event_fields", {})) for r in caplog.records)
    assert "bounce.mailbox.stopped" in everything
    assert "mailbox-secret" not in everything


async def test_pop3_is_polled_every_poll_seconds(
    reading: Reconfigure, dovecot: Dovecot, readers: Readers
) -> None:
    context = reading(protocol="pop3", poll_seconds=0.2)

    async with running(context, BounceRecorder(context)):
        for index in range(2):  # the second arrives after the pass that took the first
            dovecot.drop(USER, samples.delivered_to(readers.verp(index), samples.corpus(samples.HARD)))
            await eventually(emptied(dovecot), f"message {index} to be handled")

    assert await readers.statuses() == ["bounced", "bounced", "active"]


class Outage(BounceRecorder):
    """The database refuses every report until it is `back`."""

    back = False

    async def record(self, incoming: Incoming) -> Recorded:
        if not self.back:
            raise DatabaseUnavailable("database unreachable: connection refused")
        return await super().record(incoming)


async def test_a_database_outage_costs_a_pause_and_the_message_is_recorded_once(
    reading: Reconfigure, dovecot: Dovecot, readers: Readers, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="newsletter")
    context = reading(poll_seconds=HOUR)
    recorder = Outage(context)
    raw = samples.delivered_to(readers.verp(0), samples.corpus(samples.HARD))
    dovecot.drop(USER, raw)

    async with running(context, recorder):

        async def refused() -> bool:
            return bool(logged(caplog, "bounce.mailbox.paused"))

        await eventually(refused, "the recorder to fail")
        assert dovecot.stored(USER) == [raw]
        recorder.back = True
        await eventually(emptied(dovecot), "the message to be recorded after the pause")

    assert await event_count(context) == 1
    assert await readers.statuses() == ["bounced", "active", "active"]
    assert logged(caplog, "bounce.mailbox.not_recorded")[0]["error"] == (
        "DatabaseUnavailable: database unreachable: connection refused"
    )


async def test_a_wrong_password_is_logged_in_one_line_and_the_scanner_stops_on_request(
    reading: Reconfigure, dovecot: Dovecot, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="newsletter")
    context = reading(password="wrong-mailbox-secret")
    dovecot.drop(USER, samples.corpus(samples.HARD))

    async with running(context, BounceRecorder(context)) as task:

        async def complained() -> bool:
            return bool(logged(caplog, "bounce.mailbox.unavailable"))

        await eventually(complained, "the login failure to be logged")
        assert not task.done()

    [first, *_] = logged(caplog, "bounce.mailbox.unavailable")
    assert first["setting"] == "bounces.mailbox.password"
    assert str(first["error"]).startswith("bounces.mailbox.password: ") and "\n" not in str(first["error"])
    assert "mailbox-secret" not in caplog.text + repr(first)
    assert len(dovecot.stored(USER)) == 1
