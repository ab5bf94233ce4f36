"""One pass over the bounce mailbox: each message handed to the recorder, and removed only once
the recorder has returned (its outcome committed). What the recorder raised on stays, and so
does a message too large to read; nothing is deleted unread."""

from __future__ import annotations

import asyncio
from dataclasses import asdict, dataclass
from email.parser import BytesHeaderParser
from email.policy import compat32
from email.utils import getaddresses
from typing import Any

from newsletter.bounces.incoming import BounceSource, from_message
from newsletter.bounces.mailbox.access import Listed, Mailbox, describe
from newsletter.bounces.mailbox.imap import ImapMailbox
from newsletter.bounces.mailbox.pop3 import Pop3Mailbox
from newsletter.bounces.recorder import BounceRecorder, Recorded
from newsletter.config import Settings
from newsletter.config.bounces import MailboxConfig
from newsletter.context import AppContext
from newsletter.errors import ConfigError
from newsletter.logs import get_logger

log = get_logger(__name__)

# Where the message was delivered: with VERP, the address carries the tag of its delivery.
ENVELOPE_HEADERS = ("Delivered-To", "X-Original-To", "Envelope-To")
MAX_ENVELOPE_RECIPIENTS = 10
HEADER_BYTES = 64 * 1024  # the envelope headers are read from the top of the message only
# Failures in a row that end a pass: the database is away, and the rest would fail alike.
MAX_FAILURES_IN_A_ROW = 3


@dataclass
class ScanReport:
    handled: int = 0  # handed to the recorder and then removed: recorded, duplicate or ignored
    recorded: int = 0
    duplicate: int = 0  # recorded before (a pass that broke off after the commit)
    ignored: int = 0  # not a bounce or complaint: an auto-reply, a delay warning
    left: int = 0  # still in the mailbox: too large to read, or the recorder failed on it
    failed: int = 0  # of those left, how many the recorder failed on
    more: bool = False  # messages this pass did not get to (past batch_size, or it stopped early)

    def as_json(self) -> dict[str, Any]:
        return asdict(self)

    def summary(self) -> str:
        """One line for an operator."""
        line = (
            f"handled {self.handled} ({self.recorded} recorded, {self.duplicate} already recorded, "
            f"{self.ignored} ignored); {self.left} left in the mailbox"
        )
        if self.failed:
            line += f" ({self.failed} not recorded: see the log)"
        return line + ("; more waiting" if self.more else "")

    def count(self, recorded: Recorded) -> None:
        self.handled += 1
        if recorded.duplicate:
            self.duplicate += 1
        elif recorded.ignored:
            self.ignored += 1
        else:
            self.recorded += 1


def mailbox_config(settings: Settings) -> MailboxConfig:
    """[bounces.mailbox], or ConfigError when it names no host."""
    config = settings.bounces.mailbox
    if not config.enabled:
        raise ConfigError("no bounce mailbox is configured", setting="bounces.mailbox.host")
    return config


async def open_mailbox(config: MailboxConfig) -> Mailbox:
    if config.protocol == "pop3":
        return await Pop3Mailbox.open(config)
    return await ImapMailbox.open(config)


async def scan_once(context: AppContext, recorder: BounceRecorder) -> ScanReport:
    """Connect, handle what the mailbox holds (batch_size messages at most), log out.
    MailboxUnavailable (naming the setting at fault) when the mailbox cannot be read."""
    config = mailbox_config(context.settings)
    mailbox = await open_mailbox(config)
    try:
        report = await Scanner(recorder, config).scan(mailbox)
    except BaseException:
        mailbox.abort()
        raise
    await mailbox.close()
    return report


class Scanner:
    """Passes over one mailbox; remembers which too-large messages it already warned about."""

    def __init__(self, recorder: BounceRecorder, config: MailboxConfig) -> None:
        self.recorder = recorder
        self.config = config
        self._warned: set[str] = set()

    async def scan(self, mailbox: Mailbox, stop: asyncio.Event | None = None) -> ScanReport:
        """Up to batch_size messages, oldest first; stops early (between messages) on `stop`."""
        report = ScanReport()
        listed = await mailbox.listing()
        readable = [item for item in listed if item.size <= self.config.max_message_bytes]
        self._too_large([item for item in listed if item.size > self.config.max_message_bytes])
        report.left = len(listed) - len(readable)
        batch = readable[: self.config.batch_size]
        report.more = len(readable) > len(batch)
        failures = 0
        for item in batch:
            if (stop is not None and stop.is_set()) or failures >= MAX_FAILURES_IN_A_ROW:
                report.more = True
                break
            failures = 0 if await self._handle(mailbox, item, report) else failures + 1
        if report.handled or report.failed:
            log.info("bounce.mailbox.scanned", **asdict(report))
        return report

    async def _handle(self, mailbox: Mailbox, item: Listed, report: ScanReport) -> bool:
        """Record one message, then remove it; False (and it stays) when the recorder failed."""
        raw = await mailbox.fetch(item.key)
        if raw is None:  # gone since the listing (another client took it)
            return True
        incoming = from_message(BounceSource.MAILBOX, raw, envelope_recipients=envelope_recipients(raw))
        try:
            recorded = await self.recorder.record(incoming)
        except Exception as exc:  # the database, most likely: the message stays for the next pass
            log.warning("bounce.mailbox.not_recorded", message=item.ident, error=describe(exc))
            report.left += 1
            report.failed += 1
            return False
        await mailbox.remove(item.key)
        report.count(recorded)
        return True

    def _too_large(self, items: list[Listed]) -> None:
        """Warn once about each message left in place for its size."""
        idents = {item.ident for item in items}
        self._warned &= idents  # forget those someone removed
        for item in items:
            if item.ident not in self._warned:
                self._warned.add(item.ident)
                log.warning(
                    "bounce.mailbox.too_large",
                    message=item.ident,
                    size=item.size,
                    limit=self.config.max_message_bytes,
                    setting="bounces.mailbox.max_message_bytes",
                )


def envelope_recipients(raw: bytes) -> tuple[str, ...]:
    """The addresses a message was delivered to, from the headers the delivery agent added."""
    headers = BytesHeaderParser(policy=compat32).parsebytes(raw[:HEADER_BYTES])
    values = [str(value) for name in ENVELOPE_HEADERS for value in headers.get_all(name, [])]
    found = [address for _, address in getaddresses(values) if "@" in address]
    return tuple(dict.fromkeys(found))[:MAX_ENVELOPE_RECIPIENTS]
