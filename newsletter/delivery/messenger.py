"""What a sender speaks through: open a connection, send one message, close. The SMTP one runs
each transaction in two halves (the envelope, then the body once the caller says go), which is
what lets a crash duplicate at most the message in flight (see delivery.recorder)."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Protocol

from newsletter.config import SmtpConfig
from newsletter.delivery.smtp import SmtpReply, SmtpSession


class Messenger(Protocol):
    @property
    def relay(self) -> str: ...

    @property
    def supports_smtputf8(self) -> bool: ...

    def ready(self) -> bool:
        """Connected, and not yet due to reconnect."""
        ...

    async def open(self) -> None:
        """Connect; SmtpUnavailable, saying what failed, when that fails. No message is tried."""
        ...

    async def send(
        self,
        recipient: str,
        data: bytes,
        *,
        smtputf8: bool,
        go_ahead: Awaitable[bool],
        dot_stuffed: bool = False,
        sender: str | None = None,
    ) -> SmtpReply | None:
        """One message, from `sender` (the envelope's; None: smtp.from_address). The body goes
        only once `go_ahead` says True; False: nothing is sent
        (the connection is dropped at 354) and None comes back. SmtpConnectionLost when the
        connection breaks: the outcome is unknown. `dot_stuffed`: `data` is ready for DATA."""
        ...

    async def close(self) -> None: ...


class SmtpMessenger:
    def __init__(self, relay: str, config: SmtpConfig, *, key: str = "smtp") -> None:
        self.relay = relay
        self._session = SmtpSession(config, key=key)

    @property
    def supports_smtputf8(self) -> bool:
        return self._session.supports_smtputf8

    def ready(self) -> bool:
        return self._session.connected and not self._session.due_for_reconnect()

    async def open(self) -> None:
        await self._session.close()
        await self._session.open()

    async def send(
        self,
        recipient: str,
        data: bytes,
        *,
        smtputf8: bool,
        go_ahead: Awaitable[bool],
        dot_stuffed: bool = False,
        sender: str | None = None,
    ) -> SmtpReply | None:
        refusal = await self._session.begin(recipient, smtputf8=smtputf8, sender=sender)
        if refusal is not None:
            return refusal
        if not await go_ahead:
            self._session.abort()
            return None
        return await self._session.finish(data, dot_stuffed=dot_stuffed)

    async def close(self) -> None:
        await self._session.close()
