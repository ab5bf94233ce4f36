"""The demo's publisher: London Daily's website as the newsletter sees it. An HTTP server on
loopback with the RSS feed and the sample pictures; stories held back at the start appear in the
feed one at a time, as a living newsroom's would."""

from __future__ import annotations

import asyncio
import hashlib
import re
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from email.utils import format_datetime, parsedate_to_datetime
from html import unescape
from pathlib import Path

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from newsletter.articles.sample import NEWEST_AGE
from newsletter.resources import data_dir, sample_feed

# Where the sample feed's pictures say they live; the demo serves them itself.
SAMPLE_IMAGE_BASE = "https://londondaily.example/images/"
SAMPLE_FEED_URL = "https://londondaily.example/feed.xml"
_ITEM = re.compile(r"\s*<item>.*?</item>", re.S)
_PUB_DATE = re.compile(r"<pubDate>([^<]+)</pubDate>")
_TITLE = re.compile(r"<title>(.*?)</title>", re.S)
_BUILD_DATE = re.compile(r"<lastBuildDate>[^<]+</lastBuildDate>")


def sample_images() -> Path:
    return data_dir("examples") / "images"


@dataclass
class Story:
    xml: str
    published: datetime

    @property
    def title(self) -> str:
        found = _TITLE.search(self.xml)
        return unescape(found.group(1)) if found else ""

    def dated(self) -> str:
        stamp = format_datetime(self.published.replace(microsecond=0), usegmt=True)
        return _PUB_DATE.sub(f"<pubDate>{stamp}</pubDate>", self.xml)


@dataclass
class Newsroom:
    """The sample feed's stories: the newest ones published at the start, spread as in the file
    and moved to the present; the `held_back` oldest ones appear one by one, dated when they do
    (so the first digest leads with the sample's lead story)."""

    head: str
    tail: str
    published: list[Story]
    upcoming: list[Story]

    @classmethod
    def from_sample(cls, now: datetime, *, held_back: int, base_url: str) -> Newsroom:
        text = sample_feed().read_text(encoding="utf-8")
        text = text.replace(SAMPLE_IMAGE_BASE, f"{base_url}/images/")
        text = text.replace(SAMPLE_FEED_URL, f"{base_url}/feed.xml")
        items = list(_ITEM.finditer(text))
        if len(items) <= held_back:
            raise ValueError(f"{sample_feed()} has {len(items)} stories; {held_back} are held back")
        head, tail = text[: items[0].start()], text[items[-1].end() :]
        stories = [Story(item.group(0), _published(item.group(0))) for item in items]
        kept, upcoming = stories[: len(stories) - held_back], stories[len(stories) - held_back :]
        shift = (now - NEWEST_AGE) - max(story.published for story in kept)
        published = [Story(story.xml, story.published + shift) for story in kept]
        return cls(head, tail, published, upcoming)

    def publish_next(self, now: datetime) -> Story | None:
        """Put the next held-back story in the feed, dated `now`; None when none are left."""
        if not self.upcoming:
            return None
        story = self.upcoming.pop(0)
        story.published = now
        self.published.insert(0, story)
        return story

    def feed(self) -> str:
        newest = format_datetime(self.published[0].published.replace(microsecond=0), usegmt=True)
        head = _BUILD_DATE.sub(f"<lastBuildDate>{newest}</lastBuildDate>", self.head)
        return head + "".join(story.dated() for story in self.published) + self.tail


def _published(item: str) -> datetime:
    found = _PUB_DATE.search(item)
    if found is None:
        raise ValueError("a sample story has no pubDate")
    return parsedate_to_datetime(found.group(1))


@dataclass
class Publisher:
    """The newsroom behind an HTTP server on 127.0.0.1 (`port` 0: any free one)."""

    held_back: int = 15
    clock: Callable[[], datetime] = field(default=lambda: datetime.now().astimezone())
    port: int = 0
    newsroom: Newsroom = field(init=False)
    _server: uvicorn.Server | None = field(default=None, init=False)
    _task: asyncio.Task[None] | None = field(default=None, init=False)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def feed_url(self) -> str:
        return f"{self.base_url}/feed.xml"

    async def start(self) -> Publisher:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        self.port = listener.getsockname()[1]
        listener.listen(128)  # connections wait in the backlog until uvicorn accepts them
        self.newsroom = Newsroom.from_sample(self.clock(), held_back=self.held_back, base_url=self.base_url)
        config = uvicorn.Config(self._app(), log_level="warning", lifespan="off", access_log=False)
        self._server = uvicorn.Server(config)
        self._task = asyncio.create_task(self._server.serve(sockets=[listener]))
        return self

    async def stop(self) -> None:
        if self._server is not None and self._task is not None:
            self._server.should_exit = True
            await self._task

    def publish_next(self) -> Story | None:
        return self.newsroom.publish_next(self.clock())

    def _app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/feed.xml", self._feed, methods=["GET", "HEAD"]),
                Mount("/images", StaticFiles(directory=sample_images()), name="images"),
            ]
        )

    async def _feed(self, request: Request) -> Response:
        body = self.newsroom.feed().encode("utf-8")
        etag = '"' + hashlib.sha256(body).hexdigest()[:20] + '"'
        if request.headers.get("if-none-match") == etag:
            return Response(status_code=304, headers={"ETag": etag})
        return Response(body, media_type="application/rss+xml; charset=utf-8", headers={"ETag": etag})
