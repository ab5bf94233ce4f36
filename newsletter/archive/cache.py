"""Archive answers kept in memory for a few seconds: a page linked from a large send is asked
for by thousands of readers within minutes, and each one after the first costs no database
query and no rendering.

Each answer is built once however many ask at the same moment (the others wait for it), kept
`seconds` (an edition taken down in another process leaves within that time; in this one at
once, see `clear`), and at most `entries` are kept, the least recently used leaving first."""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass, field

from starlette.responses import Response


@dataclass(frozen=True)
class CachedPage:
    body: bytes
    media_type: str
    headers: dict[str, str]
    # The edition a private page shows: its key is checked on every request, cached or not.
    private_edition: int | None = None
    etag: str = field(init=False)
    # What every answer with this page carries (`headers` and the ETag), and the 200's headers as
    # Starlette encodes them (content length and type added), encoded once here, not per answer.
    answer_headers: dict[str, str] = field(init=False)
    raw_headers: tuple[tuple[bytes, bytes], ...] = field(init=False)

    def __post_init__(self) -> None:
        etag = '"' + hashlib.sha256(self.body).hexdigest()[:32] + '"'
        answer_headers = {**self.headers, "ETag": etag}
        encoded = Response(self.body, media_type=self.media_type, headers=answer_headers).raw_headers
        object.__setattr__(self, "etag", etag)
        object.__setattr__(self, "answer_headers", answer_headers)
        object.__setattr__(self, "raw_headers", tuple(encoded))


# A page, or None for "nothing here" (a 404 is cached too: a burst of requests for a date that
# is not published asks the database once).
Answer = CachedPage | None


class PageCache:
    def __init__(self, seconds: float, entries: int = 1024) -> None:
        self.seconds = seconds
        self.entries = entries
        self._kept: OrderedDict[Hashable, tuple[float, Answer]] = OrderedDict()
        self._building: dict[Hashable, asyncio.Future[Answer]] = {}

    async def get(self, key: Hashable, build: Callable[[], Awaitable[Answer]]) -> Answer:
        kept = self._kept.get(key)
        now = time.monotonic()
        if kept is not None and now - kept[0] < self.seconds:
            self._kept.move_to_end(key)
            return kept[1]
        pending = self._building.get(key)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[Answer] = asyncio.get_running_loop().create_future()
        self._building[key] = future
        try:
            answer = await build()
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: nobody else may be waiting for it
            raise
        finally:
            del self._building[key]
        future.set_result(answer)
        self._keep(key, answer, now)
        return answer

    def _keep(self, key: Hashable, answer: Answer, now: float) -> None:
        self._kept[key] = (now, answer)
        self._kept.move_to_end(key)
        while len(self._kept) > self.entries:
            self._kept.popitem(last=False)

    def clear(self) -> None:
        self._kept.clear()
