"""What operators see and do: bounces listed (CLI and API), counts per edition, the suppression
list kept by hand, and a suppressed address's signup answered as usual with nothing sent."""

from __future__ import annotations

import json
from pathlib import Path

import httpx

from newsletter.bounces.incoming import BounceSource, Incoming
from newsletter.bounces.recorder import BounceRecorder
from newsletter.bounces.report import BounceKind, BounceReport
from newsletter.config import Settings
from newsletter.context import AppContext
from newsletter.database.models import Edition
from newsletter.personal.verp import BounceTags, TagKind
from newsletter.states import SubscriberStatus
from tests.subscriptions.helpers import form, outbox, subscriber
from tests.support.editions import EditionFactory, deliveries
from tests.support.process import environment_for, newsletter


async def _returned(context: AppContext, edition_for: EditionFactory) -> Edition:
    """An edition of three: one hard bounce and one complaint came back."""
    edition = await edition_for(3)
    first, second, _ = await deliveries(context, edition.id)
    tags = BounceTags(context.settings)
    recorder = BounceRecorder(context)
    hard = BounceReport(
        BounceKind.HARD, recipient="reader1@readers.example", status="5.1.1", diagnostic="550 5.1.1 gone"
    )
    complaint = BounceReport(BounceKind.COMPLAINT, feedback_type="abuse")
    for report, row, source in (
        (hard, first, BounceSource.RECEIVER),
        (complaint, second, BounceSource.MAILBOX),
    ):
        tag = tags.tag(TagKind.DELIVERY, row.id)
        await recorder.record(Incoming(source, report, f"key-{row.id}", tags=(tag,)))
    return edition


async def test_the_api_lists_bounces_and_counts_them_per_edition(
    client: httpx.AsyncClient, admin_headers: dict[str, str], context: AppContext, edition_for: EditionFactory
) -> None:
    edition = await _returned(context, edition_for)

    listed = await client.get("/api/bounces", headers=admin_headers)
    complaints = await client.get("/api/bounces", params={"type": "complaint"}, headers=admin_headers)
    bad = await client.get("/api/bounces", params={"type": "bogus"}, headers=admin_headers)
    anonymous = await client.get("/api/bounces")
    shown = await client.get(f"/api/editions/{edition.id}", headers=admin_headers)

    assert listed.status_code == 200
    assert [(i["kind"], i["outcome"], i["edition_id"]) for i in listed.json()["items"]] == [
        ("complaint", "unsubscribed", edition.id),
        ("hard", "bounced", edition.id),
    ]
    assert [i["source"] for i in complaints.json()["items"]] == ["mailbox"]
    assert bad.status_code == 422 and "type" in bad.text
    assert anonymous.status_code == 401
    assert shown.json()["returned"] == {"hard": 1, "complaint": 1}


async def test_a_suppressed_address_is_unsubscribed_and_its_signup_sends_nothing(
    client: httpx.AsyncClient, admin_headers: dict[str, str], context: AppContext, edition_for: EditionFactory
) -> None:
    await edition_for(1)
    added = await client.post(
        "/api/suppressions", json={"email": "Reader1@readers.example"}, headers=admin_headers
    )
    again = await client.post(
        "/api/suppressions", json={"email": "reader1@readers.example"}, headers=admin_headers
    )
    before = len(await outbox(context))
    signup = await client.post("/subscribe", data=form(email="reader1@readers.example"))
    stranger = await client.post("/subscribe", data=form(email="stranger@readers.example"))
    listed = await client.get("/api/suppressions", headers=admin_headers)

    assert added.status_code == 201 and added.json()["added"] is True and again.json()["added"] is False
    found = await subscriber(context, "reader1@readers.example")
    assert found is not None and found.status == SubscriberStatus.UNSUBSCRIBED
    assert signup.status_code == stranger.status_code and signup.text == stranger.text.replace(
        "stranger@readers.example", "reader1@readers.example"
    )
    assert len(await outbox(context)) == before + 1  # the stranger's confirmation only
    assert [(i["email"], i["reason"]) for i in listed.json()["items"]] == [
        ("reader1@readers.example", "manual")
    ]

    lifted = await client.delete("/api/suppressions/reader1@readers.example", headers=admin_headers)
    missing = await client.delete("/api/suppressions/reader1@readers.example", headers=admin_headers)
    after = await client.post("/subscribe", data=form(email="reader1@readers.example"))
    assert (lifted.status_code, missing.status_code, after.status_code) == (204, 404, signup.status_code)
    assert len(await outbox(context)) == before + 2  # lifted: the reader's own signup is confirmed again


async def test_the_cli_lists_bounces_and_keeps_the_suppression_list(
    settings: Settings, context: AppContext, edition_for: EditionFactory, tmp_path: Path
) -> None:
    edition = await _returned(context, edition_for)
    env = environment_for(settings)

    listed = newsletter("bounces", "list", "--type", "hard", "--json", cwd=tmp_path, env=env)
    bad = newsletter("bounces", "list", "--type", "bogus", cwd=tmp_path, env=env)
    shown = newsletter("editions", "show", str(edition.id), cwd=tmp_path, env=env)
    added = newsletter("suppressions", "add", "someone@readers.example", cwd=tmp_path, env=env)
    entries = newsletter("suppressions", "list", "--json", cwd=tmp_path, env=env)
    removed = newsletter("suppressions", "remove", "nobody@readers.example", cwd=tmp_path, env=env)

    assert listed.returncode == 0, listed.stderr
    [hard] = json.loads(listed.stdout)
    assert (hard["kind"], hard["status"], hard["diagnostic"]) == ("hard", "5.1.1", "550 5.1.1 gone")
    assert bad.returncode == 2 and bad.stderr.strip().splitlines() == [bad.stderr.strip()]
    assert "--type" in bad.stderr
    assert "1 complaints" in shown.stdout and "1 hard bounces" in shown.stdout
    assert added.returncode == 0 and "suppressed" in added.stdout
    assert {(e["email"], e["reason"]) for e in json.loads(entries.stdout)} == {
        ("someone@readers.example", "manual"),
        ("reader2@readers.example", "complaint"),
    }
    assert removed.returncode == 2 and "not suppressed" in removed.stderr
