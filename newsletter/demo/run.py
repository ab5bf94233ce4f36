"""The demo: a fresh database under var/demo, the sample London Daily feed, a few readers with
different sections, a capture SMTP server writing var/outbox/*.eml, and today's edition sent
through the real delivery engine."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select

from newsletter.articles.ingest import FeedReport, ingest_feeds
from newsletter.articles.sample import write_fresh_sample_feed
from newsletter.config import FeedConfig, Settings
from newsletter.context import AppContext, open_context
from newsletter.database.models import Delivery, EditionVariant, Subscriber, utcnow
from newsletter.demo.capture import CaptureServer
from newsletter.editions import service
from newsletter.editions.sending import drain
from newsletter.editions.service import EditionReport
from newsletter.personal.recipients import PersonalMail
from newsletter.personal.tokens import LinkOwner
from newsletter.rendering import PersonalTokens
from newsletter.states import DeliveryStatus
from newsletter.subscriptions.adding import add_batch
from newsletter.subscriptions.addresses import normalise_address
from newsletter.subscriptions.audit import Actor
from newsletter.subscriptions.forms import NewSubscriber

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
    def feed(self) -> Path:
        return self.demo / "london-daily.xml"

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


def demo_settings(base: Settings, paths: DemoPaths, smtp_port: int) -> Settings:
    """The configuration made to point at the demo's own database, feed and capture server.
    A configured database or SMTP server is never touched by the demo."""
    server = base.server
    updates: dict[str, object] = {
        "database": base.database.model_copy(update={"url": f"sqlite:///{paths.database}"}),
        "smtp": base.smtp.model_copy(
            update={
                "host": "127.0.0.1",
                "port": smtp_port,
                "security": "none",
                "username": "",
                "rate_limit": 0,
            }
        ),
        "site": base.site.model_copy(
            update={
                "base_url": f"http://{_browser_host(server.host)}:{server.port}",
                "sections": base.site.sections or SECTIONS,
            }
        ),
        "feeds": [FeedConfig(url=str(paths.feed), name="London Daily (sample feed)")],
        "delivery": base.delivery.model_copy(update={"idle_poll_seconds": 0.5}),
    }
    return base.model_copy(update=updates)


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
    keep_serving: Callable[[AppContext, CaptureServer], Awaitable[None]] | None = None,
    progress: Callable[[str], None] = lambda _: None,
) -> DemoResult:
    paths = DemoPaths(root)
    reset(paths)
    capture = await CaptureServer(paths.outbox).start()
    try:
        settings = demo_settings(base, paths, capture.port)
        write_fresh_sample_feed(paths.feed, utcnow())
        async with open_context(settings) as context:
            progress("ingesting the sample London Daily feed")
            [feed] = await ingest_feeds(context)
            progress(f"adding {len(READERS)} demo readers")
            await _add_readers(context)
            progress("building today's edition")
            edition = await service.start_edition(context, None, trigger="demo")
            progress(f"sending edition {edition.id} through the capture SMTP server")
            await drain(context, editions={edition.id})
            report = await service.report(context, edition.id)
            await _write_digest(context, edition.id, paths.digest)
            result = DemoResult(
                articles=feed.new + feed.updated + feed.unchanged,
                readers=len(READERS),
                edition=report,
                messages=len(capture.handler.saved),
                paths=paths,
                feed=feed,
            )
            if keep_serving is not None:
                await keep_serving(context, capture)
            return result
    finally:
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


async def _write_digest(context: AppContext, edition_id: int, target: Path) -> None:
    """The edition as the first demo reader (every section) sees it, as a page for a browser."""
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
    await asyncio.to_thread(target.write_text, html, encoding="utf-8")


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
    }
