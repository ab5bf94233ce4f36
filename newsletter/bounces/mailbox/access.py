"""What the scanner needs of a mailbox, whichever protocol reads it, and the TLS both use."""

from __future__ import annotations

import socket
import ssl
from dataclasses import dataclass
from typing import Protocol

from newsletter.bounces.mailbox.errors import MailboxUnavailable
from newsletter.config.bounces import MailboxConfig

TIMEOUT_SECONDS = 30.0  # one command's reply; a greeting


@dataclass(frozen=True)
class Listed:
    key: str  # names the message to fetch and remove in this session (an IMAP UID, a POP3 number)
    ident: str  # names it across sessions (the UID with its UIDVALIDITY, the POP3 UIDL)
    size: int


class Mailbox(Protocol):
    @property
    def keeps_watch(self) -> bool:
        """Whether to wait for mail on this connection (IMAP IDLE). Otherwise it is closed
        between passes: POP3 deletes at QUIT and shows new mail only to a new session."""

    async def listing(self) -> list[Listed]: ...

    async def fetch(self, key: str) -> bytes | None:
        """The message's bytes; None when it is gone since the listing."""

    async def remove(self, key: str) -> None:
        """Delete the message (or move it to processed_folder): only once it is recorded."""

    async def wait_for_mail(self, seconds: float) -> None:
        """Return when new mail may have come, or after `seconds`."""

    async def close(self) -> None:
        """Log out: what `remove` asked is final only then (POP3 deletes at QUIT)."""

    def abort(self) -> None:
        """Drop the connection without a word (what was removed but not committed stays)."""


def tls_context(config: MailboxConfig) -> ssl.SSLContext:
    """The system's trust, or only `ca_file`'s; hostnames checked unless validate_certs is off."""
    try:
        context = ssl.create_default_context(cafile=str(config.ca_file) if config.ca_file else None)
    except (OSError, ssl.SSLError) as exc:
        raise MailboxUnavailable(f"cannot read {config.ca_file}: {exc}", setting="ca_file") from None
    if not config.validate_certs:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def connect_failure(exc: BaseException, config: MailboxConfig, protocol: str) -> MailboxUnavailable:
    """What a failure to connect, to shake hands or to hear the greeting says about the settings."""
    where = f"{config.host}:{config.effective_port}"
    if isinstance(exc, ssl.SSLCertVerificationError):
        return MailboxUnavailable(
            f"{config.host}'s certificate was rejected ({exc.verify_message or exc}); name its CA in "
            "bounces.mailbox.ca_file, or turn bounces.mailbox.validate_certs off",
            setting="ca_file",
        )
    if isinstance(exc, socket.gaierror):
        return MailboxUnavailable(f"cannot resolve {config.host!r}: {exc.strerror}", setting="host")
    if isinstance(exc, ssl.SSLError):
        return MailboxUnavailable(
            f"no TLS handshake with {where} ({exc.reason or exc}): is it {protocol} over TLS? "
            f"(security = {config.security!r})",
            setting="port",
        )
    if isinstance(exc, TimeoutError):
        return MailboxUnavailable(
            f"{where} sent no {protocol} greeting in {TIMEOUT_SECONDS:g} s: is it {protocol} over TLS "
            f"(security = 'tls', not {config.security!r})?",
            setting="port",
        )
    if isinstance(exc, OSError):
        return MailboxUnavailable(f"cannot connect to {where}: {exc.strerror or exc}", setting="port")
    return MailboxUnavailable(f"{protocol} server at {where} failed: {describe(exc)}")


def describe(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
