"""The recorder: each report once, matched to its delivery, the policy applied, nothing for a forgery."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from newsletter.bounces.incoming import BounceSource, Incoming
from newsletter.bounces.policy import Outcome
from newsletter.bounces.recorder import BounceRecorder
from newsletter.bounces.report import BounceKind, BounceReport
from newsletter.context import AppContext
from newsletter.database.models import AuditEvent, BounceEvent, Delivery, Subscriber, Suppression, utcnow
from newsletter.personal.recipients import MessageIds
from newsletter.personal.verp import BounceTags, TagKind
from newsletter.states import SubscriberStatus
from newsletter.subscriptions.addresses import email_hash
from tests.conftest import SettingsFactory
from tests.support.editions import EditionFactory, deliveries

BOUNCE_DOMAIN = "bounce.londondaily.example"


@pytest.fixture
def settings(make_settings: SettingsFactory):  # type: ignore[no-untyped-def]
    return make_settings(bounces={"domain": BOUNCE_DOMAIN})


def _incoming(report: BounceReport, key: str, **options: object) -> Incoming:
    return Incoming(BounceSource.RECEIVER, report, key, **options)  # type: ignore[arg-type]


async def _subscriber(context: AppContext, subscriber_id: int) -> Subscriber:
    async with context.db.session() as session:
        found = await session.get(Subscriber, subscriber_id)
        assert found is not None
        return found


async def _delivery(context: AppContext, delivery_id: int) -> Delivery:
    async with context.db.session() as session:
        found = await session.get(Delivery, delivery_id)
        assert found is not None
        return found


async def test_a_hard_bounce_by_verp_marks_the_reader_and_the_row_once(
    context: AppContext, edition_for: EditionFactory
) -> None:
    edition = await edition_for(3)
    first, second, _ = await deliveries(context, edition.id)
    address = BounceTags(context.settings).return_path(TagKind.DELIVERY, first.id)
    recorder = BounceRecorder(context)
    report = BounceReport(
        BounceKind.HARD,
        recipient="reader1@readers.example",
        status="5.1.1",
        diagnostic="550 5.1.1 no such user",
    )

    recorded = await recorder.record(_incoming(report, "sha256:one", envelope_recipients=(address,)))
    again = await recorder.record(_incoming(report, "sha256:one", envelope_recipients=(address,)))

    assert recorded.outcome is Outcome.BOUNCED
    assert recorded.match is not None and recorded.match.delivery_id == first.id
    assert again.duplicate and again.outcome is None
    assert (await _subscriber(context, first.subscriber_id)).status == SubscriberStatus.BOUNCED
    assert (await _subscriber(context, second.subscriber_id)).status == SubscriberStatus.ACTIVE
    assert (await _delivery(context, first.id)).bounce == "hard"
    async with context.db.session() as session:
        events = (await session.scalars(select(BounceEvent))).all()
    assert [(e.kind, e.outcome, e.matched_by, e.edition_id, e.status) for e in events] == [
        ("hard", "bounced", "verp", edition.id, "5.1.1")
    ]


async def test_soft_bounces_count_only_within_the_window(
    context: AppContext, edition_for: EditionFactory
) -> None:
    edition = await edition_for(2)
    row, other = await deliveries(context, edition.id)
    tag = BounceTags(context.settings).tag(TagKind.DELIVERY, row.id)
    recorder = BounceRecorder(context)
    soft = BounceReport(BounceKind.SOFT, status="4.2.2", delivery_header=tag)
    now = utcnow()
    old = await recorder.record(_incoming(soft, "k0", received_at=now - timedelta(days=20)))
    outcomes = [(await recorder.record(_incoming(soft, f"k{n}", received_at=now))).outcome for n in (1, 2, 3)]

    assert old.outcome is Outcome.COUNTED
    assert outcomes == [Outcome.COUNTED, Outcome.COUNTED, Outcome.BOUNCED]
    assert (await _subscriber(context, row.subscriber_id)).status == SubscriberStatus.BOUNCED
    assert (await _subscriber(context, other.subscriber_id)).status == SubscriberStatus.ACTIVE


async def test_a_complaint_unsubscribes_and_suppresses(
    context: AppContext, edition_for: EditionFactory
) -> None:
    edition = await edition_for(1)
    [row] = await deliveries(context, edition.id)
    message_id = MessageIds(context.settings).digest(edition.id, row.subscriber_id)
    report = BounceReport(BounceKind.COMPLAINT, feedback_type="abuse", original_message_id=message_id)

    recorded = await BounceRecorder(context).record(_incoming(report, "arf:1"))

    assert recorded.outcome is Outcome.UNSUBSCRIBED
    assert recorded.match is not None and recorded.match.matched_by == "message-id"
    subscriber = await _subscriber(context, row.subscriber_id)
    assert subscriber.status == SubscriberStatus.UNSUBSCRIBED
    async with context.db.session() as session:
        entry = await session.get(Suppression, email_hash(subscriber.email_key or ""))
    assert entry is not None and (entry.reason, entry.email) == ("complaint", subscriber.email_key)
    assert (await _delivery(context, row.id)).bounce == "complaint"


async def test_a_forged_tag_or_message_id_or_a_bare_address_changes_nothing(
    context: AppContext, edition_for: EditionFactory
) -> None:
    edition = await edition_for(1)
    [row] = await deliveries(context, edition.id)
    tags = BounceTags(context.settings)
    genuine = tags.tag(TagKind.DELIVERY, row.id)
    forged_tag = genuine[:-1] + ("a" if genuine[-1] != "a" else "b")
    forged_id = MessageIds(context.settings).digest(edition.id, row.subscriber_id).replace("<e.", "<e.9")
    reports = [
        BounceReport(BounceKind.HARD, delivery_header=forged_tag),
        BounceReport(BounceKind.HARD, original_sender=f"bounces+{forged_tag}@{BOUNCE_DOMAIN}"),
        BounceReport(BounceKind.HARD, original_message_id=forged_id),
        BounceReport(BounceKind.HARD, recipient="reader1@readers.example"),  # untrusted: a mailed report
    ]
    recorder = BounceRecorder(context)
    outcomes = [(await recorder.record(_incoming(r, f"forged{n}"))).outcome for n, r in enumerate(reports)]

    assert outcomes == [Outcome.UNMATCHED] * 4
    assert (await _subscriber(context, row.subscriber_id)).status == SubscriberStatus.ACTIVE
    assert (await _delivery(context, row.id)).bounce is None


async def test_a_providers_authenticated_address_names_the_reader(
    context: AppContext, edition_for: EditionFactory
) -> None:
    edition = await edition_for(1)
    [row] = await deliveries(context, edition.id)
    report = BounceReport(BounceKind.HARD, recipient="READER1@readers.example")

    recorded = await BounceRecorder(context).record(_incoming(report, "pm:1", trusted_recipient=True))

    assert recorded.outcome is Outcome.BOUNCED and recorded.match is not None
    assert recorded.match.matched_by == "address" and recorded.match.delivery_id is None
    assert (await _subscriber(context, row.subscriber_id)).status == SubscriberStatus.BOUNCED


async def test_auto_replies_and_delay_warnings_are_not_recorded(
    context: AppContext, edition_for: EditionFactory
) -> None:
    edition = await edition_for(1)
    [row] = await deliveries(context, edition.id)
    tag = BounceTags(context.settings).tag(TagKind.DELIVERY, row.id)
    recorder = BounceRecorder(context)
    for n, kind in enumerate((BounceKind.AUTOREPLY, BounceKind.DELAYED)):
        recorded = await recorder.record(_incoming(BounceReport(kind, delivery_header=tag), f"a{n}"))
        assert recorded.ignored
    async with context.db.session() as session:
        assert (await session.scalars(select(BounceEvent))).all() == []
    assert (await _subscriber(context, row.subscriber_id)).status == SubscriberStatus.ACTIVE


async def test_erasure_leaves_no_address_in_bounces_or_suppressions(
    context: AppContext, edition_for: EditionFactory
) -> None:
    from newsletter.subscriptions.addresses import normalise_address
    from newsletter.subscriptions.audit import Actor
    from newsletter.subscriptions.erasure import erase

    edition = await edition_for(1)
    [row] = await deliveries(context, edition.id)
    tag = BounceTags(context.settings).tag(TagKind.DELIVERY, row.id)
    complaint = BounceReport(
        BounceKind.COMPLAINT,
        recipient="reader1@readers.example",
        diagnostic="550 5.1.1 <Reader1@readers.example>: user unknown",
        delivery_header=tag,
    )
    await BounceRecorder(context).record(_incoming(complaint, "arf:erase"))
    async with context.db.session() as session:  # the console's trail names the address an operator typed
        session.add(AuditEvent(actor="olivia", action="suppression.add", target="Reader1@readers.example"))
        session.add(
            AuditEvent(
                actor="olivia", action="edition.test_send", detail="variant 1 to reader1@readers.example"
            )
        )
        session.add(
            AuditEvent(actor="olivia", action="suppression.add", target="someone.else@readers.example")
        )
        await session.commit()
    async with context.db.session() as session, session.begin():
        await erase(session, address=normalise_address("reader1@readers.example"), actor=Actor("cli"))
    async with context.db.session() as session:
        [event] = (await session.scalars(select(BounceEvent))).all()
        [entry] = (await session.scalars(select(Suppression))).all()
        trail = (await session.scalars(select(AuditEvent).order_by(AuditEvent.id))).all()
    assert [(t.target, t.detail) for t in trail] == [
        ("erased", ""),
        ("", "erased"),
        ("someone.else@readers.example", ""),
    ]
    assert event.recipient is None and event.diagnostic is None and event.kind == "complaint"
    assert entry.email is None and entry.reason == "complaint"
    assert entry.email_hash == email_hash("reader1@readers.example")
