"""The console's reports: bounces, the suppression list (kept by owners), engagement and its chart."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ElementTree
from datetime import timedelta
from html.parser import HTMLParser

import httpx
import pytest
from sqlalchemy import insert, select, update

from newsletter.bounces.incoming import BounceSource, Incoming
from newsletter.bounces.recorder import BounceRecorder
from newsletter.bounces.report import BounceKind, BounceReport
from newsletter.config import Settings
from newsletter.console import reports
from newsletter.context import AppContext
from newsletter.database.models import Article, Click, Edition, Suppression, utcnow
from newsletter.editions.sending import drain
from newsletter.editions.service import start_edition
from newsletter.personal.verp import BounceTags, TagKind
from newsletter.states import SubscriberStatus, SuppressionReason
from newsletter.subscriptions.suppressions import suppress
from tests.conftest import SettingsFactory
from tests.console.helpers import Client, audit_actions, csrf_of, log_in
from tests.subscriptions.helpers import subscriber
from tests.support.editions import EditionFactory, deliveries

NEWSLETTERS = [
    {"id": "daily", "name": "The Daily Briefing", "tracking": "per_reader"},
    {"id": "quiet", "name": "The Quiet Weekly", "tracking": "off"},
]
SCRIPT_TITLE = "<script>alert(1)</script> Budget"


@pytest.fixture
def settings(make_settings: SettingsFactory) -> Settings:
    """A newsletter that tracks clicks per reader, and one that does not track them."""
    return make_settings(newsletters=NEWSLETTERS, tracking={"scanner_seconds": 0})


class Cells(HTMLParser):
    """Every table row of a page, as the text of its cells."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[list[str]] = []
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "tr":
            self.rows.append([])
        elif tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._cell is not None:
            self.rows[-1].append(" ".join("".join(self._cell).split()))
            self._cell = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


def rows_of(page: httpx.Response) -> list[list[str]]:
    parser = Cells()
    parser.feed(page.text)
    return parser.rows


async def logged_in(browser: Client, name: str) -> httpx.AsyncClient:
    client = browser()
    assert (await log_in(client, name)).status_code == 303
    return client


# Bounces


async def _bounced(context: AppContext, edition_for: EditionFactory) -> Edition:
    """An edition of three: a hard bounce, then a complaint, then a soft bounce came back."""
    edition = await edition_for(3)
    rows = await deliveries(context, edition.id)
    tags, recorder = BounceTags(context.settings), BounceRecorder(context)
    reports_ = (
        BounceReport(BounceKind.HARD, "reader1@readers.example", "5.1.1", "550 5.1.1 <b>gone</b>"),
        BounceReport(BounceKind.COMPLAINT, feedback_type="abuse"),
        BounceReport(BounceKind.SOFT, "reader3@readers.example", "4.2.2", "452 mailbox full"),
    )
    for report, row in zip(reports_, rows, strict=True):
        tag = tags.tag(TagKind.DELIVERY, row.id)
        await recorder.record(Incoming(BounceSource.RECEIVER, report, f"key-{row.id}", tags=(tag,)))
    return edition


async def test_bounces_are_listed_newest_first_and_by_kind(
    browser: Client, context: AppContext, edition_for: EditionFactory
) -> None:
    edition = await _bounced(context, edition_for)
    client = await logged_in(browser, "vera")

    page = await client.get("/admin/bounces")
    hard = await client.get("/admin/bounces", params={"kind": "hard"})
    bad = await client.get("/admin/bounces", params={"kind": "bogus"})

    assert page.status_code == 200 and 'aria-current="page">Bounces<' in page.text
    listed = [row[1:5] for row in rows_of(page)[1:]]
    assert listed == [
        ["reader3@readers.example", "soft", "4.2.2", "452 mailbox full"],
        ["reader2@readers.example", "complaint", "abuse", "–"],  # the reader's address: none reported
        ["reader1@readers.example", "hard", "5.1.1", "550 5.1.1 <b>gone</b>"],
    ]
    assert "550 5.1.1 &lt;b&gt;gone&lt;/b&gt;" in page.text
    assert page.text.count(f'href="/admin/editions/{edition.id}"') == 3
    assert 'href="/admin/suppressions"' in page.text
    assert [row[2] for row in rows_of(hard)[1:]] == ["hard"]
    assert bad.status_code == 422 and "Kind (kind): must be one of" in bad.text
    assert "reader1@readers.example" not in bad.text


async def test_bounces_page_by_keyset(
    browser: Client, context: AppContext, edition_for: EditionFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    await _bounced(context, edition_for)
    monkeypatch.setattr(reports, "PAGE", 2)
    client = await logged_in(browser, "vera")

    first = await client.get("/admin/bounces")
    older = re.search(r'href="(/admin/bounces\?before=\d+)"', first.text)
    assert older is not None
    second = await client.get(older.group(1))
    junk = await client.get("/admin/bounces", params={"before": "x1"})

    assert [row[2] for row in rows_of(first)[1:]] == ["soft", "complaint"]
    assert [row[2] for row in rows_of(second)[1:]] == ["hard"] and "Older events" not in second.text
    assert junk.status_code == 422 and "(before)" in junk.text


# Suppressions


async def _suppressed(context: AppContext) -> list[tuple[str | None, str]]:
    async with context.db.session() as session:
        rows = await session.execute(
            select(Suppression.email, Suppression.reason).order_by(Suppression.email)
        )
        return [(email, reason) for email, reason in rows.all()]


async def test_an_owner_adds_and_removes_a_suppression(
    browser: Client, context: AppContext, edition_for: EditionFactory
) -> None:
    await edition_for(1)
    owner = await logged_in(browser, "olivia")
    page = await owner.get("/admin/suppressions")
    assert 'action="/admin/suppressions"' in page.text and '<label for="email">Address</label>' in page.text

    data = {"csrf": csrf_of(page), "email": " Reader1@Readers.example ", "reason": "asked by phone"}
    added = await owner.post("/admin/suppressions", data=data)
    again = await owner.post("/admin/suppressions", data=data)

    assert added.status_code == 303 and added.headers["location"] == "/admin/suppressions?done=added"
    assert again.headers["location"] == "/admin/suppressions?done=already"
    shown = await owner.get(added.headers["location"])
    assert "Added to the suppression list" in shown.text
    assert rows_of(shown)[1][:2] == ["reader1@readers.example", "manual"]
    found = await subscriber(context, "reader1@readers.example")
    assert found is not None and found.status == SubscriberStatus.UNSUBSCRIBED

    form = {"csrf": csrf_of(shown), "email": "reader1@readers.example"}
    removed = await owner.post("/admin/suppressions/remove", data=form)
    missing = await owner.post("/admin/suppressions/remove", data=form)

    assert removed.status_code == 303 and removed.headers["location"] == "/admin/suppressions?done=removed"
    assert missing.status_code == 404
    assert await _suppressed(context) == []
    recorded = [a for a in await audit_actions(context) if a[1].startswith("suppression.")]
    assert recorded == [
        ("olivia", "suppression.add", "reader1@readers.example"),
        ("olivia", "suppression.add", "reader1@readers.example"),
        ("olivia", "suppression.remove", "reader1@readers.example"),
    ]


async def test_only_owners_keep_the_suppression_list(browser: Client, context: AppContext) -> None:
    async with context.db.session() as session:
        await suppress(session, "kept@readers.example", SuppressionReason.MANUAL)
        await session.commit()
    for name in ("eddie", "vera"):
        client = await logged_in(browser, name)
        page = await client.get("/admin/suppressions")
        assert page.status_code == 200 and "kept@readers.example" in page.text
        assert 'method="post" action="/admin/suppressions' not in page.text  # no form it may not use
        token = csrf_of(page)
        add = await client.post("/admin/suppressions", data={"csrf": token, "email": "new@readers.example"})
        remove = await client.post(
            "/admin/suppressions/remove", data={"csrf": token, "email": "kept@readers.example"}
        )
        assert (add.status_code, remove.status_code) == (403, 403), name
    assert await _suppressed(context) == [("kept@readers.example", "manual")]
    assert not [a for a in await audit_actions(context) if a[1].startswith("suppression.")]


async def test_suppression_forms_without_the_token_change_nothing(
    browser: Client, context: AppContext
) -> None:
    async with context.db.session() as session:
        await suppress(session, "kept@readers.example", SuppressionReason.MANUAL)
        await session.commit()
    owner = await logged_in(browser, "olivia")
    for token in ({}, {"csrf": ""}, {"csrf": "0" * 64}):
        add = await owner.post("/admin/suppressions", data={**token, "email": "new@readers.example"})
        remove = await owner.post(
            "/admin/suppressions/remove", data={**token, "email": "kept@readers.example"}
        )
        assert (add.status_code, remove.status_code) == (403, 403), token
    assert await _suppressed(context) == [("kept@readers.example", "manual")]
    assert not [a for a in await audit_actions(context) if a[1].startswith("suppression.")]


async def test_a_bad_address_shows_the_form_again_naming_the_field(
    browser: Client, context: AppContext
) -> None:
    owner = await logged_in(browser, "olivia")
    token = csrf_of(await owner.get("/admin/suppressions"))
    for typed in ("not an address", "", "a@b\nc.example"):
        answer = await owner.post("/admin/suppressions", data={"csrf": token, "email": typed, "reason": "x"})
        assert answer.status_code == 422, typed
        assert re.search(r'class="error" role="alert">Address \(email\): ', answer.text), typed
    long_reason = await owner.post(
        "/admin/suppressions", data={"csrf": token, "email": "fine@readers.example", "reason": "x" * 201}
    )
    assert long_reason.status_code == 422 and "Reason (reason): must be at most 200" in long_reason.text
    assert 'value="fine@readers.example"' in long_reason.text  # what was typed, kept
    assert await _suppressed(context) == []
    assert not [a for a in await audit_actions(context) if a[1].startswith("suppression.")]


async def test_suppressions_search_by_prefix_and_page_by_keyset(
    browser: Client, context: AppContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    now = utcnow()
    async with context.db.session() as session:
        # Three at the same instant: the hash orders them, and no page repeats or skips one.
        for name in ("alice", "alfred", "albert"):
            await suppress(session, f"{name}@readers.example", SuppressionReason.MANUAL, now=now)
        day = timedelta(days=1)
        await suppress(session, "bob@readers.example", SuppressionReason.COMPLAINT, now=now + day)
        await suppress(session, "a_l%ex@readers.example", SuppressionReason.MANUAL, now=now - day)
        await session.commit()
    monkeypatch.setattr(reports, "PAGE", 2)
    client = await logged_in(browser, "vera")

    seen: list[str] = []
    page = await client.get("/admin/suppressions", params={"q": "AL"})
    while True:
        seen += [row[0] for row in rows_of(page)[1:]]
        older = re.search(r'href="(/admin/suppressions\?q=AL&amp;before=[^"]+)"', page.text)
        if older is None:
            break
        page = await client.get(older.group(1).replace("&amp;", "&"))
    everything = await client.get("/admin/suppressions")
    wildcard = await client.get("/admin/suppressions", params={"q": "a_l%"})
    junk = await client.get("/admin/suppressions", params={"before": "yesterday"})

    assert sorted(seen) == ["albert@readers.example", "alfred@readers.example", "alice@readers.example"]
    assert len(seen) == 3
    assert [row[0] for row in rows_of(everything)[1:]][0] == "bob@readers.example"
    assert [row[0] for row in rows_of(wildcard)[1:]] == ["a_l%ex@readers.example"]
    assert junk.status_code == 422 and "Page (before)" in junk.text


# Engagement


async def _clicked(context: AppContext, edition_for: EditionFactory) -> tuple[int, int, int]:
    """The daily edition, sent to three readers, with readers' clicks and filtered ones; returns
    (edition, the article whose title holds a script, the other article)."""
    edition = await edition_for(3)
    await drain(context, editions={edition.id})
    sent = await deliveries(context, edition.id)
    async with context.db.session() as session:
        first, second = (await session.scalars(select(Article.id).order_by(Article.id).limit(2))).all()
        await session.execute(update(Article).where(Article.id == first).values(title=SCRIPT_TITLE))
        now = utcnow()
        rows = [
            (first, sent[0].id, None, 60),
            (first, sent[0].id, None, 60),
            (first, sent[1].id, None, 300),
            (second, sent[2].id, None, 3600),
            (first, None, "bot", 0),
            (first, None, "bot", 0),
            (second, None, "head", 10),
        ]
        await session.execute(
            insert(Click),
            [
                {
                    "at": now,
                    "kind": "click",
                    "edition_id": edition.id,
                    "article_id": article,
                    "delivery_id": delivery,
                    "filtered": filtered,
                    "after_send_seconds": after,
                }  # fmt: skip
                for article, delivery, filtered, after in rows
            ],
        )
        await session.commit()
    return edition.id, first, second


async def test_an_editions_engagement_page(
    browser: Client, context: AppContext, edition_for: EditionFactory
) -> None:
    edition_id, _, _ = await _clicked(context, edition_for)
    client = await logged_in(browser, "vera")

    page = await client.get(f"/admin/engagement/{edition_id}")

    assert page.status_code == 200 and 'aria-current="page">Engagement<' in page.text
    cells = rows_of(page)
    assert [SCRIPT_TITLE, "World", "3", "2"] in cells  # three clicks, by two readers
    assert ["Story number 1: Britain and the big picture", "Politics", "1", "1"] in cells
    assert ["World", "3", "2"] in cells and ["Politics", "1", "1"] in cells
    assert ["bot: by its user agent", "2"] in cells and ["head: a HEAD request", "1"] in cells
    assert ["scanner: too soon after sending", "0"] in cells
    assert ["1 min – 5 min", "2"] in cells and ["0 s – 10 s", "2"] in cells
    assert ["7 days or later", "0"] in cells
    assert "<dt>Delivered</dt><dd>3</dd>" in page.text and "100.0%" in page.text  # 3 of 3 readers clicked
    assert "<script" not in page.text and "&lt;script&gt;alert(1)&lt;/script&gt; Budget" in page.text
    svg = page.text[page.text.index("<svg") : page.text.index("</svg>") + len("</svg>")]
    assert "&lt;script&gt;alert(1)&lt;/script&gt; Budget" in svg
    drawn = ElementTree.fromstring(svg)
    texts = [t.text for t in drawn.iter("{http://www.w3.org/2000/svg}text")]
    assert SCRIPT_TITLE in texts and "3" in texts


async def test_an_untracked_edition_says_so(browser: Client, context: AppContext) -> None:
    quiet = await start_edition(context, "quiet")
    client = await logged_in(browser, "eddie")

    page = await client.get(f"/admin/engagement/{quiet.id}")
    missing = await client.get("/admin/engagement/999999")

    assert page.status_code == 200 and "Click tracking is off" in page.text
    assert "<svg" not in page.text and "Delivered" not in page.text
    assert missing.status_code == 404


async def test_the_engagement_page_top_articles_and_tracked_editions(
    browser: Client, context: AppContext, edition_for: EditionFactory
) -> None:
    edition_id, first, second = await _clicked(context, edition_for)
    quiet = await start_edition(context, "quiet")
    async with context.db.session() as session:
        old = {
            "kind": "click",
            "edition_id": edition_id,
            "article_id": second,
            "at": utcnow() - timedelta(days=10),
        }
        await session.execute(insert(Click), [old, old, old])
        await session.commit()
    client = await logged_in(browser, "vera")

    week = await client.get("/admin/engagement")
    month = await client.get("/admin/engagement", params={"days": "30"})

    second_title = _title(1)
    assert week.status_code == 200
    assert [row for row in rows_of(week) if row[0] in (SCRIPT_TITLE, second_title)] == [
        [SCRIPT_TITLE, "World", "3"],
        [second_title, "Politics", "1"],
    ]
    assert [row for row in rows_of(month) if row[0] in (SCRIPT_TITLE, second_title)] == [
        [second_title, "Politics", "4"],
        [SCRIPT_TITLE, "World", "3"],
    ]
    assert f'href="/admin/engagement/{edition_id}"' in week.text
    assert f'href="/admin/engagement/{quiet.id}"' not in week.text
    assert [f"Clicks of #{edition_id}", "The Daily Briefing"] == next(
        row[:2] for row in rows_of(week) if row[0].startswith("Clicks of")
    )
    assert "<script" not in week.text


def _title(n: int) -> str:
    return f"Story number {n}: Britain and the big picture"


async def test_a_bad_period_is_named(browser: Client, context: AppContext) -> None:
    client = await logged_in(browser, "vera")
    for days in ("0", "366", "seven", "-1", "7.5", "٧"):
        answer = await client.get("/admin/engagement", params={"days": days})
        assert answer.status_code == 422, days
        assert "Period in days (days): must be a whole number from 1 to 365" in answer.text, days
    assert (await client.get("/admin/engagement", params={"days": "365"})).status_code == 200


async def test_every_report_page_is_open_to_viewers_and_closed_without_a_login(
    browser: Client, context: AppContext
) -> None:
    quiet = await start_edition(context, "quiet")
    viewer = await logged_in(browser, "vera")
    for path in (
        "/admin/bounces",
        "/admin/suppressions",
        "/admin/engagement",
        f"/admin/engagement/{quiet.id}",
    ):
        page = await viewer.get(path)
        assert page.status_code == 200 and page.text.count("<h1>") == 1, path
        assert page.text.count("<table>") == page.text.count('<div class="table-wrap"><table>'), path
        anonymous = await browser().get(path)
        assert anonymous.status_code == 303 and anonymous.headers["location"].startswith("/admin/login"), path
