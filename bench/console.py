"""Console: p50/p99 latency and requests per second of each page of the operator console under
/admin, logged in as an owner, with a million readers and a thousand editions in the database,
under wrk on loopback (CONNECTIONS connections: the aim is latency, not throughput), the
`newsletter serve` process (web only) pinned to one core and wrk on the others, on SQLite and
PostgreSQL. On SQLite the service has one database connection, so with two clients a page that
waits on the database waits for the other's query too: p50 is about twice the page's own time.

The database is written by the database itself, each table from INSERT … SELECT over a
generated series (bench/population.py's readers, then the rest here), as a long-lived service
would have it:

- READERS readers (bench/population.py), their sign-ups spread over the last ~3 years (one
  every SIGNUP_SECONDS), ~3 % of them unsubscribed, bounced or pending;
- EDITIONS editions of the daily, one a day: all but the last `done` (a few cancelled), each
  with SMALL_DELIVERIES deliveries (plus one to reader 1, whose record page is timed: a
  delivery in every edition); the last, today's, `sending` with a delivery for every reader,
  as a large send leaves them (70 % sent, 2 % failed, 1 % retry, 1 % skipped, the rest queued);
- bounce events (most of them the big edition's), consent events, audit events, suppressions,
  clicks (the daily tracks clicks, aggregate) and ARTICLES articles;
- an owner account, logged in once (the login page's CSRF field and cookie, then POST
  /admin/login) for the session cookie that every timed GET carries (wrk's `-H`).

On PostgreSQL the rows are written without foreign-key triggers when the bench connects as a
superuser (they are consistent by construction), then the tables are vacuumed and analysed, as
autovacuum would have left a long-lived database; on SQLite nothing is analysed (the service
never runs ANALYZE).

Each page must answer 200 with HTML (not the login redirect) before it is timed; a page that
is not there (404: not built yet) is skipped with a note. The baseline of each figure is
`GET /healthz` of the same server at the same concurrency. Full runs: both databases, a warm-up
of WARM_SECONDS and a window of WINDOW_SECONDS a page (about 3.5 minutes in all, two thirds of
it writing the databases); `--quick`: SQLite only, QUICK_READERS readers (the big edition as
large), a window of QUICK_WINDOW_SECONDS, no warm-up (about 20 s).

Aim (issue 22): every console page under 100 ms p99 with 1,000,000 readers and 1,000 editions.

    python -m bench --only console [--quick]
"""

from __future__ import annotations

import asyncio
import http.client
import json
import re
import subprocess
import tempfile
import time
import uuid
from dataclasses import dataclass
from datetime import datetime
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from bench import processes
from bench.cpu import CoresBusy, cpu_seconds, pin, running_on, split_cores
from bench.figures import Figure, ratio, skipped
from bench.population import READER_DOMAIN, populated
from bench.postfix import free_port, wait_for_port
from bench.scratch import Scratch, postgres_missing, scratch
from bench.signup import SCRIPT, TIMEOUT, Load, find_wrk
from newsletter.console import accounts
from newsletter.console.accounts import Role
from newsletter.console.sessions import COOKIE, LOGIN_COOKIE
from newsletter.database.models import utcnow
from newsletter.editions.lifecycle import remember_counts

CASE = "console"
AIM_P99_MS = 100.0
READERS, QUICK_READERS = 1_000_000, 50_000
EDITIONS = 1_000
SMALL_DELIVERIES = 5  # a small edition's deliveries (and one to reader 1)
SIGNUP_SECONDS = 90  # one sign-up every 90 s: 1,000,000 over ~2.9 years
BOUNCES, AUDIT_EVENTS, CONSENT_EVENTS, SUPPRESSIONS = 20_000, 10_000, 50_000, 5_000
BIG_CLICKS, SMALL_CLICKS, ARTICLES = 50_000, 10, 20_000
THREADS, CONNECTIONS = 1, 2
WINDOW_SECONDS, QUICK_WINDOW_SECONDS, WARM_SECONDS = 3, 1, 1
OWNER, PASSWORD = "bench-owner", "bench-owner-password-0123"
SHOWN_READER = 1  # the reader whose record page is timed: a delivery in every edition
SEARCH_PREFIX = "reader12345"  # reader12345@… and reader123450…123459@…: 11 of a million
TITLE_WORD = "budget"
# The daily tracks clicks (aggregate), so the engagement page lists its editions.
TRACKED = 'tracking = "aggregate"\n'
_CSRF = re.compile(r'name="csrf" value="([^"]+)"')


@dataclass(frozen=True)
class Filled:
    """What the scratch database holds, and how long it took to write."""

    readers: int
    big_edition: int
    small_edition: int
    shown_reader: int
    seconds: float
    rows: dict[str, int]
    steps: dict[str, float]  # seconds each step took


@dataclass(frozen=True)
class Page:
    label: str  # the route, as the table shows it
    path: str  # the request
    optional: bool = False  # built by other work now: a 404 is skipped, not a failure


def run(quick: bool) -> list[dict[str, Any]]:
    try:
        wrk = find_wrk()
    except LookupError as exc:
        return [skipped(CASE, str(exc))]
    readers = QUICK_READERS if quick else READERS
    window = QUICK_WINDOW_SECONDS if quick else WINDOW_SECONDS
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="bench-console-") as tmp:
        for backend in ["sqlite"] if quick else ["sqlite", "postgresql"]:
            missing = postgres_missing() if backend == "postgresql" else None
            if missing is not None:
                rows.append(skipped(CASE, f"{backend}: {missing}"))
                continue
            with scratch(backend, Path(tmp) / backend) as db:
                _track(db)
                filled = asyncio.run(_fill(db, readers))
                figures = _measure(db, wrk, filled, window, warm=not quick)
                rows += [f.row() for f in [_filled_figure(db.backend, filled), *figures]]
    return rows


def _track(db: Scratch) -> None:
    config = db.config.read_text()
    newsletter = 'id = "daily"\n'
    if newsletter not in config:
        raise RuntimeError(f"no {newsletter!r} in the scratch config")
    db.config.write_text(config.replace(newsletter, newsletter + TRACKED, 1))


def pages(filled: Filled) -> list[Page]:
    big, small, reader = filled.big_edition, filled.small_edition, filled.shown_reader
    return [
        Page("/admin (dashboard)", "/admin"),
        Page("/admin/editions", "/admin/editions"),
        Page(f"/admin/editions/{{id}} ({filled.readers:,} deliveries)", f"/admin/editions/{big}"),
        Page(f"/admin/editions/{{id}} ({SMALL_DELIVERIES + 1} deliveries)", f"/admin/editions/{small}"),
        Page("/admin/audit", "/admin/audit"),
        Page("/admin/subscribers", "/admin/subscribers", optional=True),
        Page(
            f"/admin/subscribers?q={SEARCH_PREFIX}",
            "/admin/subscribers?" + urlencode({"q": SEARCH_PREFIX}),
            optional=True,
        ),
        Page("/admin/subscribers?status=active", "/admin/subscribers?status=active", optional=True),
        Page("/admin/subscribers/{id}", f"/admin/subscribers/{reader}", optional=True),
        Page("/admin/articles", "/admin/articles", optional=True),
        Page(f"/admin/articles?q={TITLE_WORD}", f"/admin/articles?q={TITLE_WORD}", optional=True),
        Page("/admin/bounces", "/admin/bounces", optional=True),
        Page("/admin/suppressions", "/admin/suppressions", optional=True),
        Page("/admin/engagement", "/admin/engagement", optional=True),
    ]


# --- the database -------------------------------------------------------------------------


class _Sql:
    """The few SQL fragments that differ between SQLite and PostgreSQL."""

    def __init__(self, dialect: str, now: datetime) -> None:
        self.pg = dialect == "postgresql"
        # SQLite keeps a UTC datetime as text, "YYYY-MM-DD HH:MM:SS.ffffff" (SQLAlchemy's form).
        self.params: dict[str, Any] = (
            {"now": now, "today": now.date()}
            if self.pg
            else {"now": now.strftime("%Y-%m-%d %H:%M:%S"), "today": now.date().isoformat()}
        )

    def series(self, first: int, last: int) -> str:
        """A FROM item: rows n = first..last."""
        if self.pg:
            return f"generate_series({first}, {last}) AS series(n)"
        return (
            f"(WITH RECURSIVE s(n) AS (SELECT {first} UNION ALL SELECT n + 1 FROM s WHERE n < {last}) "
            "SELECT n FROM s) AS series"
        )

    def ago(self, seconds: str) -> str:
        """The moment `seconds` (an integer expression) before now."""
        if self.pg:
            return f"(CAST(:now AS timestamptz) - make_interval(secs => {seconds}))"
        return f"(strftime('%Y-%m-%d %H:%M:%S', :now, CAST(-({seconds}) AS TEXT) || ' seconds') || '.000000')"

    def days_ago(self, days: str) -> str:
        """The date `days` (an integer expression) before today."""
        if self.pg:
            return f"(CAST(:today AS date) - CAST({days} AS integer))"
        return f"date(:today, '-' || ({days}) || ' days')"

    def hex64(self, n: str) -> str:
        """64 hex digits from an integer (a hash's shape)."""
        if self.pg:
            return f"lpad(to_hex({n}), 64, '0')"
        return f"printf('%064x', {n})"


async def _fill(db: Scratch, readers: int) -> Filled:
    started = time.monotonic()
    steps: dict[str, float] = {}
    async with populated(db.settings(), readers) as context:
        steps["readers (population.py)"] = time.monotonic() - started
        await accounts.add(context, OWNER, PASSWORD, Role.OWNER)
        sql = _Sql(context.db.dialect, utcnow())
        async with context.db.engine.begin() as conn:
            if sql.pg and await conn.scalar(text(_SUPERUSER)):
                # No foreign-key triggers for these rows (consistent by construction): they took
                # half the time of a million deliveries.
                await conn.exec_driver_sql("SET LOCAL session_replication_role = replica")
            rows, big = await _write(conn, sql, readers, steps)
        if sql.pg:
            began = time.monotonic()
            await _vacuum(context.db.engine)
            steps["vacuum analyze"] = time.monotonic() - began
    # A small edition a few days back (the newest ones are the ones an operator opens).
    return Filled(readers, big, big - 3, SHOWN_READER, time.monotonic() - started, rows, steps)


_SUPERUSER = "SELECT rolsuper FROM pg_roles WHERE rolname = current_user"
# The replies a send leaves, by the delivery's status.
_SENT, _FAILED, _LATER = "'2.0.0 Ok: queued'", "'5.1.1 user unknown'", "'4.7.1 try again later'"


async def _write(
    conn: AsyncConnection, sql: _Sql, readers: int, took: dict[str, float]
) -> tuple[dict[str, int], int]:
    """Everything but the readers (already there, ids 1..readers), each table from statements
    over a series: (the rows written by table, the big edition's id). The seconds each table
    took go to `took`."""
    rows: dict[str, int] = {}

    async def run(name: str, statement: str) -> None:
        began = time.monotonic()
        result = await conn.execute(text(statement), sql.params)
        rows[name] = rows.get(name, 0) + max(result.rowcount, 0)
        took[name] = took.get(name, 0.0) + time.monotonic() - began

    r, e = readers, EDITIONS
    # Per reader: the quick run's smaller population has proportionally fewer of these.
    bounces, consent, big_clicks = (n * r // READERS for n in (BOUNCES, CONSENT_EVENTS, BIG_CLICKS))
    # Readers: sign-ups spread back in time (the newest id the latest), a few gone or pending.
    signed_up = f"({r} - id) * {SIGNUP_SECONDS}"
    await run(
        "readers changed",
        f"""UPDATE subscribers SET created_at = {sql.ago(f"{signed_up} + 600")},
              confirmed_at = {sql.ago(signed_up)}, updated_at = {sql.ago(signed_up)},
              status = CASE WHEN id % 50 = 7 THEN 'unsubscribed' WHEN id % 97 = 5 THEN 'bounced'
                            WHEN id % 211 = 3 THEN 'pending' ELSE 'active' END""",
    )
    # Edition n (1..e) went out (e - n) days ago, an hour after its cut-off; the last is today's.
    began = f"(({e} - n) * 86400 + 3600)"
    await run(
        "editions",
        f"""INSERT INTO editions (newsletter_id, edition_date, sequence, status, trigger, since_at,
              cutoff_at, total, auto_pause, created_at, started_at, finished_at)
            SELECT 'daily', {sql.days_ago(f"{e} - n")}, 0,
              CASE WHEN n = {e} THEN 'sending' WHEN n % 100 = 50 THEN 'cancelled' ELSE 'done' END,
              'schedule', {sql.ago(f"{began} + 86400 + 300")}, {sql.ago(f"{began} + 300")},
              CASE WHEN n = {e} THEN {r} ELSE {SMALL_DELIVERIES + 1} END, TRUE,
              {sql.ago(f"{began} + 300")}, {sql.ago(began)},
              CASE WHEN n = {e} THEN NULL ELSE {sql.ago(f"{began} - 900")} END
            FROM {sql.series(1, e)}""",
    )
    first = int(await conn.scalar(text("SELECT min(id) FROM editions")) or 0)
    big = first + e - 1
    # The small editions: SMALL_DELIVERIES readers each (never reader 1), a few of them failed;
    # row n is edition first + n / SMALL_DELIVERIES, sent (e - 1 - n / SMALL_DELIVERIES) days ago.
    per = SMALL_DELIVERIES
    went = f"(({e} - 1 - n / {per}) * 86400 + 3600)"
    failed = f"(n % {per} = {per - 1} AND (n / {per}) % 3 = 0)"
    await run(
        "deliveries",
        f"""INSERT INTO deliveries (edition_id, subscriber_id, status, attempts, next_attempt_at,
              last_code, last_reply, relay, bounce, sent_at, updated_at)
            SELECT {first} + n / {per}, ((n / {per}) * 7919 + (n % {per}) * 200003) % ({r} - 1) + 2,
              CASE WHEN {failed} THEN 'failed' ELSE 'sent' END, 1, {sql.ago(went)},
              CASE WHEN {failed} THEN 550 ELSE 250 END, CASE WHEN {failed} THEN {_FAILED} ELSE {_SENT} END,
              'default', CASE WHEN {failed} THEN 'hard' ELSE NULL END,
              CASE WHEN {failed} THEN NULL ELSE {sql.ago(f"{went} - 120")} END, {sql.ago(f"{went} - 120")}
            FROM {sql.series(0, (e - 1) * per - 1)}""",
    )
    # Reader 1 had every edition (today's below, with everyone's).
    went = f"(({e} - 1 - n) * 86400 + 3600)"
    await run(
        "deliveries",
        f"""INSERT INTO deliveries (edition_id, subscriber_id, status, attempts, next_attempt_at,
              last_code, last_reply, relay, sent_at, updated_at)
            SELECT {first} + n, {SHOWN_READER}, 'sent', 1, {sql.ago(went)}, 250, {_SENT}, 'default',
              {sql.ago(f"{went} - 60")}, {sql.ago(f"{went} - 60")}
            FROM {sql.series(0, e - 2)}""",
    )
    # Today's edition, a delivery for every reader, part of the way through its send (the hour
    # since it started): 70 % sent, 2 % failed (half of them bounces), 1 % retry, 1 % skipped.
    by_status = [("< 70", "'sent'", "250", _SENT), ("< 72", "'failed'", "550", _FAILED)]
    by_status += [("= 72", "'retry'", "451", _LATER), ("= 73", "'skipped'", "NULL", "NULL")]

    def pick(column: int, otherwise: str) -> str:
        cases = " ".join(f"WHEN n % 100 {test} THEN {values[column]}" for test, *values in by_status)
        return f"CASE {cases} ELSE {otherwise} END"

    tried = "n % 100 < 73"
    await run(
        "deliveries",
        f"""INSERT INTO deliveries (edition_id, subscriber_id, status, attempts, next_attempt_at,
              last_code, last_reply, relay, bounce, sent_at, updated_at)
            SELECT {big}, n, {pick(0, "'queued'")}, CASE WHEN {tried} THEN 1 ELSE 0 END, {sql.ago("3600")},
              {pick(1, "NULL")}, {pick(2, "NULL")}, CASE WHEN {tried} THEN 'default' ELSE NULL END,
              CASE WHEN n % 100 IN (70, 71) AND n % 200 < 100 THEN 'hard' ELSE NULL END,
              CASE WHEN n % 100 < 70 THEN {sql.ago("3600 - n % 3600")} ELSE NULL END,
              CASE WHEN {tried} THEN {sql.ago("3600 - n % 3600")} ELSE NULL END
            FROM {sql.series(1, r)}""",
    )
    # As the service leaves them: a finished edition keeps its counts (editions.lifecycle).
    finished = (
        await conn.scalars(text("SELECT id FROM editions WHERE status IN ('done', 'cancelled')"))
    ).all()
    for edition_id in finished:
        await conn.run_sync(remember_counts, edition_id)
    # Bounces and complaints: three in four for today's edition, the rest for older ones.
    kind = "CASE WHEN n % 10 < 6 THEN 'hard' WHEN n % 10 < 9 THEN 'soft' ELSE 'complaint' END"
    outcome = "CASE WHEN n % 10 < 6 THEN 'bounced' WHEN n % 10 < 9 THEN 'counted' ELSE 'unsubscribed' END"
    await run(
        "bounce_events",
        f"""INSERT INTO bounce_events (received_at, source, kind, event_key, recipient, status,
              diagnostic, matched_by, outcome, subscriber_id, edition_id)
            SELECT {sql.ago("n * 30")}, 'receiver', {kind}, 'bench-' || CAST(n AS TEXT),
              'reader' || CAST((n * 7919) % {r} + 1 AS TEXT) || '@{READER_DOMAIN}',
              CASE WHEN n % 10 < 6 THEN '5.1.1' WHEN n % 10 < 9 THEN '4.2.2' ELSE NULL END,
              CASE WHEN n % 10 < 9 THEN 'smtp; 550 5.1.1 user unknown' ELSE NULL END, 'verp', {outcome},
              (n * 7919) % {r} + 1, CASE WHEN n % 4 = 0 THEN {first} + n % ({e} - 1) ELSE {big} END
            FROM {sql.series(1, bounces)}""",
    )
    await run(
        "bounce_events",
        f"""INSERT INTO bounce_events (received_at, source, kind, event_key, recipient, status,
              diagnostic, matched_by, outcome, subscriber_id, edition_id)
            SELECT {sql.ago("n * 86400 + 3600")}, 'receiver', 'soft', 'bench-shown-' || CAST(n AS TEXT),
              'reader{SHOWN_READER}@{READER_DOMAIN}', '4.2.2', 'smtp; 452 4.2.2 mailbox full', 'verp',
              'counted', {SHOWN_READER}, {big} - n
            FROM {sql.series(1, 20)}""",
    )
    # The consent log: every 20th reader's sign-up, and reader 1's changes over the years.
    detail = """'{"newsletters": {"daily": []}}'"""
    await run(
        "events",
        f"""INSERT INTO events (at, kind, subscriber_id, newsletter_id, ip, user_agent, detail)
            SELECT {sql.ago(f"({r} - n * 20) * {SIGNUP_SECONDS}")}, 'signup', n * 20, 'daily',
              '192.0.2.1', 'Mozilla/5.0', {detail}
            FROM {sql.series(1, consent)}""",
    )
    await run(
        "events",
        f"""INSERT INTO events (at, kind, subscriber_id, newsletter_id, ip, user_agent, detail)
            SELECT {sql.ago("n * 86400 * 7")}, CASE WHEN n % 2 = 0 THEN 'preferences' ELSE 'confirm' END,
              {SHOWN_READER}, 'daily', '192.0.2.1', 'Mozilla/5.0', {detail}
            FROM {sql.series(1, 120)}""",
    )
    action = "CASE WHEN n % 5 = 0 THEN 'edition.pause' WHEN n % 5 = 1 THEN 'edition.resume' ELSE 'login' END"
    await run(
        "audit_events",
        f"""INSERT INTO audit_events (at, actor, action, target, detail, address)
            SELECT {sql.ago(f"({AUDIT_EVENTS} - n) * 600")}, '{OWNER}', {action},
              CASE WHEN n % 5 < 2 THEN 'edition ' || CAST({first} + n % {e} AS TEXT) ELSE '' END,
              '', '127.0.0.1'
            FROM {sql.series(1, AUDIT_EVENTS)}""",
    )
    await run(
        "suppressions",
        f"""INSERT INTO suppressions (email_hash, reason, created_at, email)
            SELECT {sql.hex64("n")},
              CASE WHEN n % 3 = 0 THEN 'erased' WHEN n % 3 = 1 THEN 'complaint' ELSE 'operator' END,
              {sql.ago("n * 3600")},
              CASE WHEN n % 3 = 0 THEN NULL ELSE 'gone' || CAST(n AS TEXT) || '@elsewhere.example' END
            FROM {sql.series(1, SUPPRESSIONS)}""",
    )
    # Articles: 20 a day going back; the sample articles (population.py) are the latest.
    title = (
        "CASE WHEN n % 4 = 0 THEN 'Council budget vote delayed again, story ' "
        "WHEN n % 4 = 1 THEN 'Transport strike talks resume, story ' "
        "WHEN n % 4 = 2 THEN 'Museum opens a new wing, story ' "
        "ELSE 'Heatwave warning for the weekend, story ' END || CAST(n AS TEXT)"
    )
    published = sql.ago("(n + 1) * 4320")
    await run(
        "articles",
        f"""INSERT INTO articles (canonical_url, url, title, summary, section, published_at, feed_url,
              content_hash, created_at, updated_at)
            SELECT 'https://londondaily.example/bench/' || CAST(n AS TEXT),
              'https://londondaily.example/bench/' || CAST(n AS TEXT), {title},
              'A summary of the story, a few sentences long, as a feed gives it.',
              CASE WHEN n % 3 = 0 THEN 'news' WHEN n % 3 = 1 THEN 'business' ELSE 'culture' END,
              {published}, 'bench', {sql.hex64("n")}, {published}, {published}
            FROM {sql.series(1, ARTICLES)}""",
    )
    # Clicks on the sample articles: today's edition's over the last hour (a few set apart),
    # and SMALL_CLICKS for each older edition on its day.
    samples = "SELECT id FROM articles WHERE canonical_url NOT LIKE 'https://londondaily.example/bench/%'"
    ids = [int(a) for a in (await conn.scalars(text(samples + " ORDER BY id LIMIT 10"))).all()] or [0]
    article = "CASE " + " ".join(f"WHEN n % {len(ids)} = {i} THEN {a}" for i, a in enumerate(ids)) + " END"
    await run(
        "clicks",
        f"""INSERT INTO clicks (at, kind, edition_id, article_id, filtered, after_send_seconds)
            SELECT {sql.ago("n % 3000")}, 'click', {big}, {article},
              CASE WHEN n % 20 = 0 THEN 'repeat' WHEN n % 50 = 1 THEN 'scanner' ELSE NULL END, 60
            FROM {sql.series(1, big_clicks)}""",
    )
    went = f"(({e} - 1 - n / {SMALL_CLICKS}) * 86400)"
    await run(
        "clicks",
        f"""INSERT INTO clicks (at, kind, edition_id, article_id, after_send_seconds)
            SELECT {sql.ago(went)}, 'click', {first} + n / {SMALL_CLICKS}, {article}, 3600
            FROM {sql.series(0, (e - 1) * SMALL_CLICKS - 1)}""",
    )
    return rows, big


async def _vacuum(engine: AsyncEngine) -> None:
    """What autovacuum would have done by now: statistics and the visibility map."""
    async with engine.connect() as conn:
        conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
        for table in (
            "subscribers",
            "subscriptions",
            "editions",
            "deliveries",
            "bounce_events",
            "events",
            "audit_events",
            "suppressions",
            "articles",
            "clicks",
        ):
            await conn.exec_driver_sql(f"VACUUM (ANALYZE) {table}")


# --- the server and the load --------------------------------------------------------------


def _measure(db: Scratch, wrk: str, filled: Filled, window: int, *, warm: bool) -> list[Figure]:
    server_cores, load_cores = split_cores()
    port = free_port()
    env = db.env(server__port=str(port), server__scheduler="false", server__worker="false")
    server = processes.Running(("serve",), env, db.folder / "serve.log", db.folder)
    pin(server.pid, server_cores)  # before it starts any thread; its threads are pinned again below
    figures: list[Figure] = []
    try:
        wait_for_port(port, timeout=120)
        cookie = _log_in(port)
        pin(server.pid, server_cores)
        target = _Target(wrk, server.pid, port, cookie, db.backend)
        with running_on(load_cores):
            health = _load(wrk, port, "/healthz", window, "")
            figures += [_time_page(target, page, window, health, warm=warm) for page in pages(filled)]
    finally:
        stopped = server.stop()
    if stopped.returncode not in (0, -15):
        raise RuntimeError(f"serve exited {stopped.returncode}: {processes.tail(stopped.output)}")
    return figures


@dataclass(frozen=True)
class _Target:
    """The server under load and what the requests need."""

    wrk: str
    pid: int
    port: int
    cookie: str  # the session's
    backend: str


def _time_page(target: _Target, page: Page, window: int, health: Load, *, warm: bool) -> Figure:
    wrk, pid, port, cookie = target.wrk, target.pid, target.port, target.cookie
    status, size, first_ms = _get(port, page.path, cookie)
    what = f"GET {page.label} p99, {target.backend}"
    if status == 404 and page.optional:
        return Figure(CASE, f"skipped: GET {page.label}, {target.backend}: 404 (not there yet)")
    if status in (302, 303):
        raise RuntimeError(f"{page.path} answered {status}: the session cookie was not taken")
    if status != 200:
        return Figure(
            CASE, what, unit="ms", aim=f"< {AIM_P99_MS:g} ms", met=False, note=f"answered {status}: not timed"
        )
    if warm:
        _load(wrk, port, page.path, WARM_SECONDS, cookie)
    cpu_before = cpu_seconds(pid)
    with CoresBusy() as busy:
        load = _load(wrk, port, page.path, window, cookie)
    cpu = cpu_seconds(pid) - cpu_before
    per_request_ms = 1000 * cpu / load.requests if load.requests else None
    note = (
        f"p50 {load.p50_ms:.1f} ms, max {load.max_ms:.0f} ms; {load.rate:,.0f} req/s ({load.requests:,} in "
        f"{load.seconds:.0f} s, {CONNECTIONS} connections); {size:,} B; server CPU "
        f"{per_request_ms or 0:.1f} ms a request, {100 * cpu / load.seconds:.0f}% of its core"
        + (f"; {load.unanswered} unanswered" if load.unanswered else "")
    )
    return Figure(
        CASE,
        what,
        ours=load.p99_ms,
        unit="ms",
        baseline=health.p99_ms,
        baseline_name="GET /healthz p99, same server",
        ratio=ratio(load.p99_ms, health.p99_ms),
        aim=f"< {AIM_P99_MS:g} ms",
        met=load.p99_ms < AIM_P99_MS and not load.unanswered,
        note=note,
        details={
            "path": page.path,
            "p50_ms": load.p50_ms,
            "p99_ms": load.p99_ms,
            "max_ms": load.max_ms,
            "requests_per_s": load.rate,
            "requests": load.requests,
            "seconds": load.seconds,
            "unanswered": load.unanswered,
            "first_request_ms": first_ms,
            "page_bytes": size,
            "threads": THREADS,
            "connections": CONNECTIONS,
            "server_cpu_ms_per_request": per_request_ms,
            "server_share_of_core": cpu / load.seconds if load.seconds else None,
            "cores_busy": busy.share,
            "healthz_p50_ms": health.p50_ms,
            "healthz_requests_per_s": health.rate,
        },
    )


def _filled_figure(backend: str, filled: Filled) -> Figure:
    counts = ", ".join(f"{n:,} {name}" for name, n in filled.rows.items() if name != "readers changed")
    return Figure(
        CASE,
        f"database written, {backend}",
        ours=filled.seconds,
        unit="s",
        note=f"{filled.readers:,} readers, {counts}",
        details={
            "readers": filled.readers,
            "editions": EDITIONS,
            "rows": filled.rows,
            "seconds": {step: round(s, 1) for step, s in filled.steps.items()},
        },
    )


def _connection(port: int) -> http.client.HTTPConnection:
    return http.client.HTTPConnection("127.0.0.1", port, timeout=60)


def _log_in(port: int) -> str:
    """The session cookie's value: the login form (its CSRF field and cookie), then the post."""
    conn = _connection(port)
    try:
        conn.request("GET", "/admin/login")
        form = conn.getresponse()
        body = form.read().decode()
        login_cookie = _cookies(form).get(LOGIN_COOKIE)
        found = _CSRF.search(body)
        if form.status != 200 or login_cookie is None or found is None:
            raise RuntimeError(f"GET /admin/login answered {form.status} without its form or cookie")
        fields = {"name": OWNER, "password": PASSWORD, "csrf": found.group(1), "next": "/admin"}
        headers = {
            "Content-Type": "application/x-www-form-urlencoded",
            "Cookie": f"{LOGIN_COOKIE}={login_cookie}",
        }
        conn.request("POST", "/admin/login", body=urlencode(fields), headers=headers)
        answer = conn.getresponse()
        answer.read()
        session = _cookies(answer).get(COOKIE)
        if answer.status != 303 or not session:
            raise RuntimeError(f"POST /admin/login answered {answer.status} without a session cookie")
    finally:
        conn.close()
    return session


def _cookies(answer: http.client.HTTPResponse) -> dict[str, str]:
    jar: SimpleCookie = SimpleCookie()
    for header in answer.headers.get_all("set-cookie") or []:
        jar.load(header)
    return {name: morsel.value for name, morsel in jar.items()}


def _get(port: int, path: str, cookie: str) -> tuple[int, int, float]:
    """(status, bytes, milliseconds) of one GET with the session; a 200 must be HTML."""
    conn = _connection(port)
    try:
        started = time.perf_counter()
        conn.request("GET", path, headers={"Cookie": f"{COOKIE}={cookie}"})
        answer = conn.getresponse()
        body = answer.read()
        took = 1000 * (time.perf_counter() - started)
    finally:
        conn.close()
    kind = answer.headers.get("content-type", "")
    if answer.status == 200 and not kind.startswith("text/html"):
        raise RuntimeError(f"{path} answered 200 with {kind}, not HTML")
    return answer.status, len(body), took


def _load(wrk: str, port: int, path: str, seconds: int, cookie: str) -> Load:
    """wrk with bench/load.lua in mode "get" on `path`, the session cookie in `-H`."""
    command = [wrk, f"-t{THREADS}", f"-c{CONNECTIONS}", f"-d{seconds}s", "--latency", "--timeout", TIMEOUT]
    if cookie:
        command += ["-H", f"Cookie: {COOKIE}={cookie}"]
    command += ["-s", str(SCRIPT), f"http://127.0.0.1:{port}", "--", "get", uuid.uuid4().hex[:8], path]
    done = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 60)
    line = next((x for x in done.stdout.splitlines() if x.startswith("WRK_JSON ")), None)
    if done.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed ({done.returncode}): {(done.stderr or done.stdout).strip()[-300:]}")
    figures = json.loads(line.removeprefix("WRK_JSON "))
    if figures["status_errors"]:
        raise RuntimeError(f"GET {path}: {figures['status_errors']} answers were not 2xx or 3xx")
    return Load(
        requests=figures["requests"],
        seconds=figures["duration_us"] / 1e6,
        p50_ms=figures["p50_us"] / 1e3,
        p99_ms=figures["p99_us"] / 1e3,
        max_ms=figures["max_us"] / 1e3,
        unanswered=figures["socket_errors"],
    )
