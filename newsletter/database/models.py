"""The tables: articles, feeds, subscribers, subscriptions, suppressions, bounce events, editions,
deliveries, messages, events, rate limits."""

from __future__ import annotations

import secrets
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# SQLite only aliases the rowid for a column declared exactly INTEGER PRIMARY KEY.
BigId = BigInteger().with_variant(Integer, "sqlite")


class UTCDateTime(TypeDecorator[datetime]):
    """Aware datetimes in UTC on the way in and out, whatever the backend stores."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        stored: datetime = value
        if stored.tzinfo is None:
            return stored.replace(tzinfo=UTC)
        return stored.astimezone(UTC)


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class Article(Base):
    __tablename__ = "articles"
    __table_args__ = (
        # The console's title search (ILIKE '%word%'): a trigram index on PostgreSQL. SQLite cannot
        # index such a search, so its copy is kept empty (WHERE 0) and costs nothing.
        Index(
            "ix_articles_title_search",
            "title",
            postgresql_using="gin",
            postgresql_ops={"title": "gin_trgm_ops"},
            sqlite_where=text("0"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    # Globally unique key of the feed entry (its id when that is a URL or URN, else
    # "<feed>#<id>"); None for articles pushed without one.
    guid: Mapped[str | None] = mapped_column(String(1000), unique=True)
    canonical_url: Mapped[str] = mapped_column(String(2000), unique=True)
    url: Mapped[str] = mapped_column(String(2000))
    title: Mapped[str] = mapped_column(String(500))
    summary: Mapped[str] = mapped_column(Text, default="")
    author: Mapped[str | None] = mapped_column(String(300))
    section: Mapped[str | None] = mapped_column(String(100), index=True)
    image_url: Mapped[str | None] = mapped_column(String(2000))
    published_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    feed_url: Mapped[str | None] = mapped_column(String(2000))
    content_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Set by an operator: left out of every edition selected from then on.
    hidden_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Set by an operator: leads the next edition of each newsletter it belongs to
    # (editions.selection.pinned_lead).
    pinned_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)


class FeedState(Base):
    """What the last fetch of a feed returned, for conditional GET and reporting."""

    __tablename__ = "feed_states"

    feed_url: Mapped[str] = mapped_column(String(2000), primary_key=True)
    etag: Mapped[str | None] = mapped_column(String(500))
    last_modified: Mapped[str | None] = mapped_column(String(100))
    checked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_status: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(Text)


def new_token_nonce() -> str:
    """A subscriber's link nonce (see subscriptions.tokens): 12 of [0-9A-F], never reused."""
    return secrets.token_hex(6).upper()


class Subscriber(Base):
    __tablename__ = "subscribers"
    # AUTOINCREMENT: SQLite would otherwise hand the id of a deleted row (an expired signup)
    # to the next subscriber.
    __table_args__ = {"sqlite_autoincrement": True}

    id: Mapped[int] = mapped_column(primary_key=True)
    # Normalised address as given (None once erased); email_key is its lower-cased form.
    email: Mapped[str | None] = mapped_column(String(320))
    email_key: Mapped[str | None] = mapped_column(String(320), unique=True)
    # pending | active | unsubscribed | bounced | erased
    status: Mapped[str] = mapped_column(String(20), index=True)
    timezone: Mapped[str | None] = mapped_column(String(64))
    source: Mapped[str] = mapped_column(String(20), default="web")
    hard_bounces: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    # Bumped by every change of status or subscriptions: workers re-check recipients by it.
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    confirmed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    unsubscribed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    confirmation_sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Signed into every link of this subscriber; drawn anew on erasure.
    token_nonce: Mapped[str] = mapped_column(String(12), default=new_token_nonce)
    # Subscribed before links carried a nonce: links without one still act for this subscriber.
    legacy_links: Mapped[bool] = mapped_column(Boolean, default=False)


class Subscription(Base):
    """A subscriber's choice of one newsletter and, within it, of sections."""

    __tablename__ = "subscriptions"
    __table_args__ = (Index("ix_subscriptions_newsletter_sections", "newsletter_id", "sections"),)

    subscriber_id: Mapped[int] = mapped_column(
        ForeignKey("subscribers.id", ondelete="CASCADE"), primary_key=True
    )
    newsletter_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    # Canonical JSON list of section names, sorted; "[]" means every section.
    sections: Mapped[str] = mapped_column(String(2000), default="[]")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Suppression(Base):
    """An address never mailed again and not re-added silently: erased (kept only as a hash;
    its owner's own double opt-in lifts it), a complaint or an operator's entry (the address
    kept for operators; only an operator lifts it)."""

    __tablename__ = "suppressions"

    email_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    reason: Mapped[str] = mapped_column(String(20))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    email: Mapped[str | None] = mapped_column(String(320))


class BounceEvent(Base):
    """A bounce or complaint that arrived after acceptance, recorded once (by `event_key`)."""

    __tablename__ = "bounce_events"
    __table_args__ = (Index("ix_bounce_events_subscriber_kind", "subscriber_id", "kind", "received_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    source: Mapped[str] = mapped_column(String(20))  # receiver | mailbox | ses | postmark | ...
    kind: Mapped[str] = mapped_column(String(10))  # hard | soft | complaint | unknown
    # The provider's event id, or a hash of the report: the same report twice is one event.
    event_key: Mapped[str] = mapped_column(String(200), unique=True)
    recipient: Mapped[str | None] = mapped_column(String(320))
    status: Mapped[str | None] = mapped_column(String(20))
    diagnostic: Mapped[str | None] = mapped_column(String(1000))
    feedback_type: Mapped[str | None] = mapped_column(String(40))
    matched_by: Mapped[str | None] = mapped_column(String(20))  # verp | header | message-id | address
    outcome: Mapped[str] = mapped_column(String(20))  # what it did to the reader
    subscriber_id: Mapped[int | None] = mapped_column(Integer)
    edition_id: Mapped[int | None] = mapped_column(Integer, index=True)
    delivery_id: Mapped[int | None] = mapped_column(BigInteger)
    message_id: Mapped[int | None] = mapped_column(BigInteger)  # an outbox row (a confirmation)


class Edition(Base):
    """One issue of a newsletter: keyed by newsletter, date in its timezone and sequence."""

    __tablename__ = "editions"
    __table_args__ = (UniqueConstraint("newsletter_id", "edition_date", "sequence"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    newsletter_id: Mapped[str] = mapped_column(String(40))
    edition_date: Mapped[date] = mapped_column(Date)
    # 0 for the day's edition; 1, 2… for extra editions asked for with `send --new`.
    sequence: Mapped[int] = mapped_column(Integer, default=0)
    # building | sending | paused | cancelled | done
    status: Mapped[str] = mapped_column(String(20), index=True)
    trigger: Mapped[str] = mapped_column(String(20), default="manual")
    since_at: Mapped[datetime] = mapped_column(UTCDateTime)
    cutoff_at: Mapped[datetime] = mapped_column(UTCDateTime)
    total: Mapped[int] = mapped_column(Integer, default=0)
    auto_pause: Mapped[bool] = mapped_column(Boolean, default=True)
    pause_reason: Mapped[str | None] = mapped_column(Text)
    # Set when sending stopped for a configuration fault (the setting to fix); cleared when a
    # worker starts again (fixed, it goes on; not, it is set again).
    waiting_reason: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Taken down from the web archive by an operator (`editions unpublish`).
    unpublished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Its deliveries by status, JSON, written once it is done or cancelled (they change no more;
    # a resume clears it): reports need not count a million rows again.
    final_counts: Mapped[str | None] = mapped_column(Text)


class EditionVariant(Base):
    """A distinct set of articles within an edition, rendered and inlined once."""

    __tablename__ = "edition_variants"
    __table_args__ = (UniqueConstraint("edition_id", "variant_key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    edition_id: Mapped[int] = mapped_column(ForeignKey("editions.id", ondelete="CASCADE"))
    variant_key: Mapped[str] = mapped_column(String(64))
    # JSON list of article ids, lead first; "[]" for a variant with nothing new.
    article_ids: Mapped[str] = mapped_column(Text)
    subject: Mapped[str] = mapped_column(String(998))
    html: Mapped[str] = mapped_column(Text)
    text: Mapped[str] = mapped_column(Text)
    # The nonce of the personal-field tokens in html and text (rendering.PersonalTokens);
    # None for variants rendered before tokens had one.
    token_nonce: Mapped[str | None] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class LeasedWork:
    """The columns a worker leases, sends and records by: one shape for the ledger's rows of
    editions (`deliveries`) and of one-off emails (`messages`), so every ledger statement is
    written once for both."""

    # queued | sending (leased) | sent | retry | failed | skipped (states.DeliveryStatus)
    status: Mapped[str] = mapped_column(String(10))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime)
    lease_owner: Mapped[str | None] = mapped_column(String(100))
    lease_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Set, in the commit its body waits for, when the leased attempt reaches SMTP: after a crash
    # only these rows may have gone out; the rest of the lease goes back without an attempt.
    attempt_started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_code: Mapped[int | None] = mapped_column(Integer)
    last_reply: Mapped[str | None] = mapped_column(String(1000))
    message_id: Mapped[str | None] = mapped_column(String(250))
    # The SMTP relay (smtp.relays[].name) that carried the last attempt.
    relay: Mapped[str | None] = mapped_column(String(40))
    # "hard" when the failure was a bounce (the recipient refused at RCPT with 550/551/553).
    bounce: Mapped[str | None] = mapped_column(String(10))
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Delivery(LeasedWork, Base):
    """The ledger of editions: one row per edition and subscriber."""

    __tablename__ = "deliveries"
    __table_args__ = (
        UniqueConstraint("edition_id", "subscriber_id"),
        Index("ix_deliveries_claim", "status", "next_attempt_at"),
        Index("ix_deliveries_edition_status", "edition_id", "status", "next_attempt_at"),
        # An edition's failures, latest first (the console's and `editions show --failures`).
        Index(
            "ix_deliveries_failed",
            "edition_id",
            "updated_at",
            "id",
            sqlite_where=text("status = 'failed'"),
            postgresql_where=text("status = 'failed'"),
        ),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    edition_id: Mapped[int] = mapped_column(ForeignKey("editions.id", ondelete="CASCADE"))
    subscriber_id: Mapped[int] = mapped_column(ForeignKey("subscribers.id"), index=True)
    variant_id: Mapped[int | None] = mapped_column(ForeignKey("edition_variants.id"))


class Message(LeasedWork, Base):
    """The outbox of one-off messages (confirmations), sent ahead of editions."""

    __tablename__ = "messages"
    __table_args__ = (Index("ix_messages_claim", "status", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    kind: Mapped[str] = mapped_column(String(20))
    subscriber_id: Mapped[int] = mapped_column(ForeignKey("subscribers.id", ondelete="CASCADE"), index=True)
    newsletter_id: Mapped[str | None] = mapped_column(String(40))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Event(Base):
    """The consent and audit log."""

    __tablename__ = "events"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    # signup | confirm | preferences | unsubscribe | bounce | complaint | erasure | import
    kind: Mapped[str] = mapped_column(String(20), index=True)
    subscriber_id: Mapped[int | None] = mapped_column(Integer, index=True)
    newsletter_id: Mapped[str | None] = mapped_column(String(40))
    ip: Mapped[str | None] = mapped_column(String(64))
    user_agent: Mapped[str | None] = mapped_column(String(300))
    detail: Mapped[str | None] = mapped_column(Text)


class Click(Base):
    """A click on a tracked article link, or (per-reader tracking) an open: one row each, counted
    or `filtered` (scanner, head, bot, prefetch, repeat), never holding a reader's identity unless
    the newsletter tracks per reader."""

    __tablename__ = "clicks"
    # Covering what an edition's figures group by: counted without reading the table.
    __table_args__ = (Index("ix_clicks_edition_article", "edition_id", "article_id", "kind", "filtered"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    kind: Mapped[str] = mapped_column(String(10))  # click | open
    edition_id: Mapped[int] = mapped_column(Integer)
    article_id: Mapped[int | None] = mapped_column(Integer)
    filtered: Mapped[str | None] = mapped_column(String(20))
    # Seconds between the message going out and the click, rounded down to a timing bucket.
    after_send_seconds: Mapped[int | None] = mapped_column(Integer)
    delivery_id: Mapped[int | None] = mapped_column(BigInteger)
    subscriber_id: Mapped[int | None] = mapped_column(Integer, index=True)


class RateLimitWindow(Base):
    """Requests counted per client and fixed window, where every web process sees them."""

    __tablename__ = "rate_limits"

    # "<limit>:<keyed hash of the client>", e.g. "signup:3f9a…"
    bucket: Mapped[str] = mapped_column(String(100), primary_key=True)
    # Start of the window, in whole seconds since the epoch.
    window_start: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    hits: Mapped[int] = mapped_column(Integer)


class Admin(Base):
    """An operator of the console: a name, an Argon2 hash of the password and a role."""

    __tablename__ = "admins"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(10))  # owner | editor | viewer
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    password_changed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class AdminSession(Base):
    """A console login: the cookie carries a random token, the table only its SHA-256."""

    __tablename__ = "admin_sessions"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    admin_id: Mapped[int] = mapped_column(ForeignKey("admins.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    seen_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)


class AuditEvent(Base):
    """An operator's action in the console (or a login attempt): who, what, on what, from where."""

    __tablename__ = "audit_events"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    actor: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(40))
    target: Mapped[str] = mapped_column(String(200), default="")
    detail: Mapped[str] = mapped_column(Text, default="")
    address: Mapped[str] = mapped_column(String(64), default="")
