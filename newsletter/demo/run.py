"""The demo: a fresh database and configuration file under var/demo, London Daily's feed from
the demo's own publisher, a few readers with different sections, a capture SMTP server writing
var/outbox/*.eml, and today's edition sent through the real delivery engine."""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import shutil
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tomli_w
from sqlalchemy import select

from newsletter.articles.ingest import FeedReport, ingest_feeds
from newsletter.config import DEFAULT_SECRET, Settings, load_settings
from newsletter.config.loading import merge_tables, read_toml
from newsletter.context import AppContext, open_context
from newsletter.database.models import Delivery, EditionVariant, Subscriber
from newsletter.demo.capture import CaptureServer
from newsletter.demo.publisher import Publisher, sample_images
from newsletter.editions import service
from newsletter.editions.sending import drain
from newsletter.editions.service import EditionReport
from newsletter.logs import get_logger
from newsletter.personal.recipients import PersonalMail
from newsletter.personal.tokens import LinkOwner
from newsletter.rendering import PersonalTokens
from newsletter.service import Part
from newsletter.states import DeliveryStatus
from newsletter.subscriptions.adding import add_batch
from newsletter.subscriptions.addresses import normalise_address
from newsletter.subscriptions.audit import Actor
from newsletter.subscriptions.forms import NewSubscriber

log = get_logger(__name__)

SECTIONS = ["World", "Politics", "Business", "Economy", "Energy", "Defence", "Immigration", "UK"]

# Demo readers and the sections each chose ([] = everything).
READERS: dict[str, list[str]] = {
    "ada@readers.example": [],
    "ben@readers.example": ["World", "Politics"],
    "chloe@readers.example": ["Business", "Economy", "Energy"],
    "dev@readers.example": ["Defence", "World"],
    "emma@readers.example": ["Immigration", "UK"],
    "farid@readers.example": ["Politics", "Economy"],
}


@dataclass(frozen=True)
class DemoPaths:
    root: Path

    @property
    def demo(self) -> Path:
        return self.root / "demo"

    @property
    def database(self) -> Path:
        return self.demo / "newsletter.db"

    @property
    def config(self) -> Path:
        return self.demo / "newsletter.toml"

    @property
    def outbox(self) -> Path:
        return self.root / "outbox"

    @property
    def digest(self) -> Path:
        return self.outbox / "digest.html"


@dataclass(frozen=True)
class DemoResult:
    articles: int
    readers: int
    edition: EditionReport
    messages: int
    paths: DemoPaths
    feed: FeedReport
    settings: Settings


@dataclass(frozen=True)
class Running:
    """What `--serve` keeps running after the first edition."""

    context: AppContext
    capture: CaptureServer
    publisher: Publisher
    result: DemoResult


def demo_config(base: Settings, paths: DemoPaths, *, smtp_port: int, feed_url: str) -> dict[str, Any]:
    """The demo's configuration file: the one it was given (if any) pointed at the demo's own
    database, publisher and capture server, with fresh secrets where the defaults still stand.
    A configured database or SMTP server is never touched by the demo."""
    data = read_toml(base.source) if base.source is not None else {}
    server = base.server
    overrides: dict[str, Any] = {
        "database": {"url": f"sqlite:///{paths.database.resolve()}"},
        "smtp": {
            "host": "127.0.0.1",
            "port": smtp_port,
            "security": "none",
            "username": "",
            "password": "",
            "rate_limit": 0,
            "relays": [],
        },
        "site": {"base_url": f"http://{_browser_host(server.host)}:{server.port}"},
        "feeds": [{"url": feed_url, "name": "London Daily", "allow_private": True, "poll_minutes": 1}],
        "delivery": {"idle_poll_seconds": 0.5},
    }
    if not base.site.sections:
        overrides["site"]["sections"] = SECTIONS
    if "newsletters" in data:
        overrides["newsletters"] = [{**entry, "relays": []} for entry in data["newsletters"]]
    security = base.security
    if security.admin_token.get_secret_value() == DEFAULT_SECRET:
        overrides.setdefault("security", {})["admin_token"] = secrets.token_urlsafe(24)
    if security.secret_key.get_secret_value() == DEFAULT_SECRET:
        overrides.setdefault("security", {})["secret_key"] = secrets.token_urlsafe(32)
    return merge_tables(data, overrides)


def write_config(path: Path, data: dict[str, Any]) -> None:
    """Owner-only: the file holds the demo's admin token and signing key."""
    text = "# Written by `newsletter demo`; commands run in the project folder use it.\n"
    text += tomli_w.dumps(data)
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        handle.write(text)


def _browser_host(host: str) -> str:
    return "127.0.0.1" if host in ("0.0.0.0", "::", "") else host


def reset(paths: DemoPaths) -> None:
    """Each demo starts afresh: its own database and an empty outbox."""
    if paths.demo.exists():
        shutil.rmtree(paths.demo)
    paths.demo.mkdir(parents=True)
    if paths.outbox.exists():
        for old in list(paths.outbox.glob("*.eml")) + [paths.digest]:
            old.unlink(missing_ok=True)


async def demo(
    base: Settings,
    root: Path,
    *,
    keep_serving: Callable[[Running], Awaitable[None]] | None = None,
    progress: Callable[[str], None] = lambda _: None,
    smtp_port: int = 0,
) -> DemoResult:
    paths = DemoPaths(root)
    reset(paths)
    capture = await CaptureServer(paths.outbox, port=smtp_port).start()
    publisher = await Publisher().start()
    try:
        data = demo_config(base, paths, smtp_port=capture.port, feed_url=publisher.feed_url)
        await asyncio.to_thread(write_config, paths.config, data)
        settings = load_settings(paths.config)
        async with open_context(settings) as context:
            progress(f"ingesting London Daily's feed from the demo publisher at {publisher.feed_url}")
            [feed] = await ingest_feeds(context)
            if feed.failed:
                raise RuntimeError(f"the demo publisher's feed could not be read: {feed.error}")
            progress(f"adding {len(READERS)} demo readers")
            await _add_readers(context)
            progress("building today's edition")
            edition = await service.start_edition(context, None, trigger="demo")
            progress(f"sending edition {edition.id} through the capture SMTP server")
            await drain(context, editions={edition.id})
            report = await service.report(context, edition.id)
            await _write_digest(context, edition.id, paths, publisher.base_url)
            result = DemoResult(
                articles=feed.new + feed.updated + feed.unchanged,
                readers=len(READERS),
                edition=report,
                messages=len(capture.handler.saved),
                paths=paths,
                feed=feed,
                settings=settings,
            )
            if keep_serving is not None:
                await keep_serving(Running(context, capture, publisher, result))
            return result
    finally:
        await publisher.stop()
        await capture.stop()


async def _add_readers(context: AppContext) -> None:
    newsletter = context.settings.newsletters[0].id
    entries = [
        NewSubscriber(
            address=normalise_address(email),
            choices={newsletter: list(sections)},
            timezone="Europe/London",
            confirmed=True,
        )
        for email, sections in READERS.items()
    ]
    async with context.db.session() as session:
        await add_batch(session, settings=context.settings, entries=entries, actor=Actor("cli"))
        await session.commit()


async def _write_digest(context: AppContext, edition_id: int, paths: DemoPaths, publisher: str) -> None:
    """The edition as the first demo reader (every section) sees it, as a page for a browser,
    its pictures copied beside it (the demo publisher stops with the demo)."""
    async with context.db.session() as session:
        row = (
            await session.execute(
                select(EditionVariant, Subscriber)
                .join(Delivery, Delivery.variant_id == EditionVariant.id)
                .join(Subscriber, Subscriber.id == Delivery.subscriber_id)
                .where(EditionVariant.edition_id == edition_id, Subscriber.email == next(iter(READERS)))
                .limit(1)
            )
        ).first()
    if row is None:
        return
    variant, reader = row
    owner = LinkOwner(reader.id, reader.token_nonce)
    newsletter = context.settings.newsletters[0].id
    fields = PersonalMail(context.settings).digest_fields(owner, reader.email or "", newsletter)
    html = PersonalTokens.stored(variant.token_nonce).fill_html(variant.html, fields)
    html = html.replace(f"{publisher}/images/", "images/")
    await asyncio.to_thread(_write_page, paths, html)


def _write_page(paths: DemoPaths, html: str) -> None:
    shutil.copytree(sample_images(), paths.outbox / "images", dirs_exist_ok=True)
    paths.digest.write_text(html, encoding="utf-8")


def newsroom_part(running: Running, every_seconds: float) -> Part:
    """London Daily publishes a held-back story every `every_seconds`, and the demo fetches its
    feed at once (the scheduler polls it every minute too, as it would a real publisher's), so
    an edition started after a story appears carries it."""

    async def publish(stopping: asyncio.Event) -> None:
        while not await _stopped_within(stopping, every_seconds):
            story = running.publisher.publish_next()
            if story is None:
                log.info("demo.stories_exhausted")
                await stopping.wait()
                return
            log.info("demo.story_published", title=story.title)
            await ingest_feeds(running.context)

    return publish


async def _stopped_within(stopping: asyncio.Event, seconds: float) -> bool:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stopping.wait(), seconds)
    return stopping.is_set()


def summary(result: DemoResult) -> dict[str, object]:
    counts = result.edition.counts
    return {
        "articles": result.articles,
        "readers": result.readers,
        "edition": result.edition.id,
        "sent": counts[DeliveryStatus.SENT],
        "skipped": counts[DeliveryStatus.SKIPPED],
        "failed": counts[DeliveryStatus.FAILED],
        "messages_in_outbox": result.messages,
        "outbox": str(result.paths.outbox),
        "digest": str(result.paths.digest),
        "database": str(result.paths.database),
        "config": str(result.paths.config),
    }
