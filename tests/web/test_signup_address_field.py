"""The signup form's address field lets through every address the server takes, and when the
server refuses one, its message stands beside the field with what the reader typed."""

from __future__ import annotations

import httpx
import lxml.html
import pytest

from newsletter.context import AppContext
from tests.subscriptions.helpers import form, subscriber

INTERNATIONAL = ["jürgen@example.de", "用户@例子.广告", "δοκιμή@παράδειγμα.δοκιμή"]


def address_field(html: str) -> lxml.html.HtmlElement:
    (field,) = lxml.html.document_fromstring(html).xpath('//input[@name="email"]')
    return field


async def test_the_field_takes_any_text_and_asks_for_an_email_keyboard(client: httpx.AsyncClient) -> None:
    field = address_field((await client.get("/")).text)
    assert field.get("type") == "text"
    assert (field.get("inputmode"), field.get("autocomplete")) == ("email", "email")
    assert (field.get("spellcheck"), field.get("autocapitalize")) == ("false", "off")
    assert field.get("required") is not None
    assert field.get("aria-invalid") is None and field.get("aria-describedby") is None


@pytest.mark.parametrize("address", INTERNATIONAL)
async def test_international_addresses_sign_up_like_any_other(
    client: httpx.AsyncClient, context: AppContext, address: str
) -> None:
    plain = await client.post("/subscribe", data=form(email="reader@example.com"))
    international = await client.post("/subscribe", data=form(email=address))
    assert international.status_code == plain.status_code == 200
    assert international.text == plain.text and "Check your inbox" in plain.text
    assert await subscriber(context, address) is not None


@pytest.mark.parametrize("typed", ["jürgen@@example.de", "用户例子.广告", "no-at-sign"])
async def test_a_refused_address_is_explained_beside_the_field(
    client: httpx.AsyncClient, context: AppContext, typed: str
) -> None:
    response = await client.post("/subscribe", data=form(email=typed))
    assert response.status_code == 422
    field = address_field(response.text)
    assert field.get("value") == typed
    assert field.get("aria-invalid") == "true"
    described = field.get("aria-describedby")
    (message,) = field.getroottree().getroot().xpath(f'//*[@id="{described}"]')
    text = message.text_content()
    assert "not a valid email address" in text.lower() and text.startswith("Error: ")
    # Beside the field: between its label and it, not only in the summary above the form.
    assert message.getnext() is field and message.getprevious().get("for") == "email"


async def test_an_error_elsewhere_leaves_the_field_alone(client: httpx.AsyncClient) -> None:
    response = await client.post("/subscribe", data=form(email="reader@example.com", sections=["Nope"]))
    assert response.status_code == 422
    field = address_field(response.text)
    assert field.get("aria-invalid") is None and field.get("value") == "reader@example.com"
    assert 'id="email-error"' not in response.text
