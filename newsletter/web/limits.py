"""ASGI middleware that refuses request bodies over the configured size with 413."""

from __future__ import annotations

import json
from collections.abc import Mapping

from fastapi import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from newsletter.web.security import SECURITY_HEADERS


class BodyTooLarge(HTTPException):
    """Raised while reading a body; an HTTPException so FastAPI answers 413 with it."""

    def __init__(self, max_bytes: int) -> None:
        super().__init__(413, f"request body over {max_bytes} bytes")


PROGRAM_PREFIXES = ("/api/", "/webhooks/")


class BodySizeLimit:
    """`max_bytes` for the public pages; the authenticated admin API (`/api/`) and the providers'
    webhooks (`/webhooks/`: batches of events, each request authenticated) may send more."""

    def __init__(
        self,
        app: ASGIApp,
        max_bytes: int,
        max_api_bytes: int | None = None,
        uploads: Mapping[str, int] | None = None,
    ) -> None:
        self.app = app
        self.page_limit = max_bytes
        self.api_limit = max_api_bytes or max_bytes
        # Paths that take a file (the console's CSV import): their own limit. Their routes read
        # the body only after checking the login, so nobody else can make them read one.
        self.uploads = dict(uploads or {})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        limit = self.api_limit if path.startswith(PROGRAM_PREFIXES) else self.page_limit
        limit = self.uploads.get(path, limit)
        await _Limited(self.app, limit)(scope, receive, send)


_SECURITY = [(name.lower().encode(), value.encode()) for name, value in SECURITY_HEADERS.items()]


class _Limited:
    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._refuse(send)
            return
        received = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise BodyTooLarge(self.max_bytes)
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except BodyTooLarge:
            if not started:
                await self._refuse(send)

    async def _refuse(self, send: Send) -> None:
        body = json.dumps({"detail": f"request body over {self.max_bytes} bytes"}).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"connection", b"close"),
                    *_SECURITY,
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
