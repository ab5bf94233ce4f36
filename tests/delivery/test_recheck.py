"""What a worker re-checks between claim and send, on a real database."""

from __future__ import annotations

from sqlalchemy import delete, update

from newsletter.context import AppContext
from newsletter.database.models import Edition, Subscriber, Subscription, utcnow
from newsletter.delivery.recheck import Recheck, Refusal
from newsletter.delivery.work import WorkItem, WorkKind
from tests.support.editions import EditionFactory, addresses
from tests.support.factories import add_subscribers


def digest_for(subscriber_id: int, newsletter: str = "daily") -> WorkItem:
    return WorkItem(
        WorkKind.DIGEST,
        1,
        subscriber_id,
        1,
        edition_id=1,
        variant_id=1,
        newsletter_id=newsletter,
        email="x@readers.example",
        eligible=True,
    )


async def test_readers_who_leave_after_the_claim_are_refused(context: AppContext) -> None:
    gone, left_daily, stays = await add_subscribers(context, 3)
    recheck = Recheck(context.db.engine)
    recheck.watch({"daily"})
    async with context.db.session() as session:
        await session.execute(
            update(Subscriber).where(Subscriber.id == gone).values(status="unsubscribed", updated_at=utcnow())
        )
        await session.execute(delete(Subscription).where(Subscription.subscriber_id == left_daily))
        await session.execute(
            update(Subscriber).where(Subscriber.id == left_daily).values(updated_at=utcnow())
        )
        await session.commit()
    await recheck.refresh()
    assert recheck.refusal(digest_for(gone)) == "no longer subscribed"
    assert recheck.refusal(digest_for(left_daily)) == "unsubscribed from this newsletter"
    assert recheck.refusal(digest_for(stays)) is None


async def test_a_new_pending_signup_still_gets_its_confirmation(context: AppContext) -> None:
    recheck = Recheck(context.db.engine)
    [pending] = await add_subscribers(context, 1, status="pending")
    await recheck.refresh()
    confirmation = WorkItem(
        WorkKind.CONFIRMATION, 1, pending, 1, newsletter_id="daily", email="x@readers.example", eligible=True
    )
    assert recheck.refusal(confirmation) is None
    async with context.db.session() as session:
        await session.execute(
            update(Subscriber).where(Subscriber.id == pending).values(status="erased", updated_at=utcnow())
        )
        await session.commit()
    await recheck.refresh()
    assert recheck.refusal(confirmation) == "no longer pending"


async def test_a_paused_edition_hands_its_work_back(context: AppContext, edition_for: EditionFactory) -> None:
    edition = await edition_for(2)
    [subscriber_id, _] = sorted((await addresses(context)).keys())
    recheck = Recheck(context.db.engine)
    recheck.editions_sending({edition.id})
    item = WorkItem(
        WorkKind.DIGEST, 1, subscriber_id, 1, edition.id, None, "daily", "x@readers.example", eligible=True
    )
    await recheck.refresh()
    assert recheck.refusal(item) is None
    async with context.db.session() as session:
        await session.execute(update(Edition).where(Edition.id == edition.id).values(status="paused"))
        await session.commit()
    await recheck.refresh()
    assert recheck.refusal(item) is Refusal.EDITION_STOPPED
    # Resumed, it is sent again by the same (long-running) worker.
    async with context.db.session() as session:
        await session.execute(update(Edition).where(Edition.id == edition.id).values(status="sending"))
        await session.commit()
    await recheck.refresh()
    assert recheck.refusal(item) is None


async def test_an_edition_this_worker_paused_is_refused_at_once_and_sent_again_once_resumed(
    context: AppContext, edition_for: EditionFactory
) -> None:
    edition = await edition_for(1)
    [subscriber_id] = (await addresses(context)).keys()
    recheck = Recheck(context.db.engine)
    item = WorkItem(
        WorkKind.DIGEST, 1, subscriber_id, 1, edition.id, None, "daily", "x@readers.example", eligible=True
    )
    recheck.edition_stopped(edition.id)  # before any look at the database
    assert recheck.refusal(item) is Refusal.EDITION_STOPPED
    await recheck.refresh()  # the database says it is sending (resumed meanwhile)
    assert recheck.refusal(item) is None
