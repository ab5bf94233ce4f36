"""Nothing is lost: a message leaves the mailbox only after the recorder returned. A failure
before the commit leaves it to be recorded later; a crash after the commit leaves it to be
found recorded already (the event key is the hash of its bytes), and then removed."""

from __future__ import annotations

import pytest

from newsletter.bounces.incoming import Incoming
from newsletter.bounces.mailbox import ScanReport, scan_once
from newsletter.bounces.recorder import BounceRecorder, Recorded
from newsletter.context import AppContext
from newsletter.errors import DatabaseUnavailable
from tests.bounces.mailbox import samples
from tests.bounces.mailbox.conftest import USER, Readers, Reconfigure, event_count, events
from tests.support.mta import Dovecot

PROTOCOLS = pytest.mark.parametrize("protocol", ["imap", "pop3"])


class FailsBeforeCommit(BounceRecorder):
    """The database is away: `record` raises before anything is committed."""

    async def record(self, incoming: Incoming) -> Recorded:
        raise DatabaseUnavailable("database unreachable: connection refused")


class CrashesAfterCommit(BounceRecorder):
    """The process dies just after the commit, before the scanner could remove the message."""

    async def record(self, incoming: Incoming) -> Recorded:
        await super().record(incoming)
        raise ConnectionResetError("gone before the message was removed")


class Crash(BaseException):
    """Not an error the scanner handles: the process being killed, as far as the pass can tell."""


class CrashesOnSecond(BounceRecorder):
    calls = 0

    async def record(self, incoming: Incoming) -> Recorded:
        self.calls += 1
        if self.calls == 2:
            raise Crash()
        return await super().record(incoming)


@PROTOCOLS
async def test_a_failure_before_the_commit_leaves_the_message_for_the_next_pass(
    reading: Reconfigure, dovecot: Dovecot, readers: Readers, protocol: str
) -> None:
    context = reading(protocol=protocol)
    raw = samples.delivered_to(readers.verp(0), samples.corpus(samples.HARD))
    dovecot.drop(USER, raw)

    failed = await scan_once(context, FailsBeforeCommit(context))

    assert failed == ScanReport(left=1, failed=1)
    assert dovecot.stored(USER) == [raw]
    assert await event_count(context) == 0
    assert await readers.statuses() == ["active", "active", "active"]

    again = await scan_once(context, BounceRecorder(context))

    assert again == ScanReport(handled=1, recorded=1)
    assert dovecot.stored(USER) == []
    assert await events(context) == [("hard", "bounced", "verp", readers.rows[0].id)]
    assert await readers.statuses() == ["bounced", "active", "active"]


@PROTOCOLS
async def test_a_crash_after_the_commit_records_the_message_once(
    reading: Reconfigure, dovecot: Dovecot, readers: Readers, protocol: str
) -> None:
    context = reading(protocol=protocol)
    raw = samples.delivered_to(readers.verp(1), samples.corpus(samples.COMPLAINT))
    dovecot.drop(USER, raw)

    crashed = await scan_once(context, CrashesAfterCommit(context))

    assert crashed == ScanReport(left=1, failed=1)
    assert dovecot.stored(USER) == [raw]
    assert await readers.statuses() == ["active", "unsubscribed", "active"]

    again = await scan_once(context, BounceRecorder(context))

    assert again == ScanReport(handled=1, duplicate=1)
    assert dovecot.stored(USER) == []
    assert await events(context) == [("complaint", "unsubscribed", "verp", readers.rows[1].id)]


@PROTOCOLS
async def test_a_pass_killed_midway_loses_nothing(
    reading: Reconfigure, dovecot: Dovecot, readers: Readers, protocol: str
) -> None:
    """POP3 deletes at QUIT: the first message, recorded and marked, comes back after the
    crash; IMAP removed it at once. Either way each is recorded exactly once."""
    context = reading(protocol=protocol)
    dovecot.drop(USER, samples.delivered_to(readers.verp(0), samples.corpus(samples.HARD)))
    dovecot.drop(USER, samples.delivered_to(readers.verp(1), samples.corpus(samples.COMPLAINT)))

    with pytest.raises(Crash):
        await scan_once(context, CrashesOnSecond(context))

    assert len(dovecot.stored(USER)) == {"imap": 1, "pop3": 2}[protocol]
    assert await event_count(context) == 1

    again = await scan_once(context, BounceRecorder(context))

    assert (
        again
        == {
            "imap": ScanReport(handled=1, recorded=1),
            "pop3": ScanReport(handled=2, recorded=1, duplicate=1),
        }[protocol]
    )
    assert dovecot.stored(USER) == []
    assert [kind for kind, *_ in await events(context)] == ["hard", "complaint"]
    assert await readers.statuses() == ["bounced", "unsubscribed", "active"]


async def test_three_failures_in_a_row_end_the_pass(
    context: AppContext, dovecot: Dovecot, readers: Readers
) -> None:
    for index in range(3):
        dovecot.drop(USER, samples.delivered_to(readers.verp(index), samples.corpus(samples.HARD)))
    dovecot.drop(USER, samples.corpus(samples.UNTAGGED_HARD))

    report = await scan_once(context, FailsBeforeCommit(context))

    assert report == ScanReport(left=3, failed=3, more=True)
    assert len(dovecot.stored(USER)) == 4
