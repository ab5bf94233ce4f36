"""An in-process SMTP server (aiosmtpd) that keeps every message as an .eml file."""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass, field
from email.parser import BytesHeaderParser
from email.policy import default
from pathlib import Path

from aiosmtpd.smtp import SMTP, Envelope, Session

from newsletter.logs import get_logger

log = get_logger(__name__)


class OutboxHandler:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.saved: list[Path] = []
        folder.mkdir(parents=True, exist_ok=True)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.content or b""
        data = content if isinstance(content, bytes) else content.encode("utf-8")
        subject = str(BytesHeaderParser(policy=default).parsebytes(data).get("Subject", ""))
        for recipient in envelope.rcpt_tos:
            path = self.folder / f"{len(self.saved) + 1:05d}-{_safe(recipient)}.eml"
            self.saved.append(path)
            await asyncio.to_thread(path.write_bytes, data)
            log.info("capture.saved", recipient=recipient, subject=subject, path=str(path))
        return "250 2.0.0 Saved in the outbox"


def _safe(address: str) -> str:
    return re.sub(r"[^A-Za-z0-9@._+-]", "_", address)[:80]


@dataclass
class CaptureServer:
    folder: Path
    host: str = "127.0.0.1"
    port: int = 0
    handler: OutboxHandler = field(init=False)
    _server: asyncio.AbstractServer | None = field(default=None, init=False)

    async def start(self) -> CaptureServer:
        self.handler = OutboxHandler(self.folder)
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: SMTP(self.handler, hostname="outbox.localhost", enable_SMTPUTF8=True),
            self.host,
            self.port,
        )
        self.port = self._server.sockets[0].getsockname()[1]
        log.info("capture.started", port=self.port, outbox=str(self.folder))
        return self

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
