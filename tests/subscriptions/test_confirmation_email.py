"""Double opt-in end to end: the confirmation email arrives at a real SMTP server and its link works."""

from __future__ import annotations

import httpx

from newsletter.context import AppContext
from newsletter.editions.sending import drain
from newsletter.personal.links import Links
from tests.subscriptions.helpers import confirmation_links, outbox, subscriber
from tests.support.smtp import SmtpServer


async def test_the_confirmation_email_confirms(
    client: httpx.AsyncClient, context: AppContext, smtp_server: SmtpServer
) -> None:
    await client.post("/subscribe", data={"email": "Reader@Example.com", "website": ""})
    links = await confirmation_links(context, smtp_server)
    assert list(links) == ["Reader@example.com"]
    (received,) = smtp_server.handler.messages()
    message = received.message()
    assert message["To"] == "Reader@example.com"
    assert "confirm" in str(message["Subject"]).lower()
    response = await client.get(links["Reader@example.com"])
    assert response.status_code == 200 and "You are subscribed" in response.text
    stored = await subscriber(context, "reader@example.com")
    assert stored is not None and stored.status == "active"


async def test_repeated_signups_send_one_email(
    client: httpx.AsyncClient, context: AppContext, smtp_server: SmtpServer
) -> None:
    for _ in range(5):
        await client.post("/subscribe", json={"email": "eager@example.com"})
    await drain(context)
    assert smtp_server.handler.recipients() == ["eager@example.com"]


async def test_nothing_is_sent_for_bad_input_or_a_honeypot(
    client: httpx.AsyncClient, context: AppContext, smtp_server: SmtpServer
) -> None:
    await client.post("/subscribe", json={"email": "bob@example.com\r\nBcc: victim@example.org"})
    await client.post("/subscribe", json={"email": "bot@example.com", "website": "spam"})
    await client.post("/subscribe", json={"email": "x@example.com", "sections": ["Nope"]})
    await drain(context)
    assert smtp_server.handler.messages() == []


async def test_a_confirmation_still_queued_is_not_sent_after_erasure(
    client: httpx.AsyncClient, context: AppContext, smtp_server: SmtpServer, admin_headers: dict[str, str]
) -> None:
    await client.post("/subscribe", json={"email": "changed.mind@example.com"})
    await client.delete("/api/subscribers/changed.mind@example.com", headers=admin_headers)
    await drain(context)
    assert smtp_server.handler.messages() == []
    assert [m.status for m in await outbox(context)] == ["skipped"]


async def test_a_confirm_link_for_an_erased_subscriber_is_no_longer_valid(
    client: httpx.AsyncClient, context: AppContext, smtp_server: SmtpServer, admin_headers: dict[str, str]
) -> None:
    await client.post("/subscribe", json={"email": "erased@example.com"})
    links = await confirmation_links(context, smtp_server)
    await client.delete("/api/subscribers/erased@example.com", headers=admin_headers)
    response = await client.get(links["erased@example.com"])
    assert response.status_code == 400 and "no longer valid" in response.text
    assert Links(context.settings).base_url in smtp_server.handler.messages()[0].data.decode()
