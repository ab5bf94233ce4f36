"""Whole messages: parsed back with the standard library, headers, encoding, injection."""

from __future__ import annotations

import email
import email.policy
import html
import re
from datetime import UTC, datetime
from email.message import EmailMessage, MIMEPart
from email.utils import parsedate_to_datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from newsletter.config import NewsletterConfig, Settings
from newsletter.errors import RenderError
from newsletter.personal.recipients import make_message_id
from newsletter.rendering import (
    DigestRenderer,
    MessageTemplate,
    OutgoingMessage,
    PersonalTokens,
    Recipient,
    RenderedEmail,
)
from tests.rendering.articles import EDITION_DATE, stories
from tests.rendering.conftest import DIGEST_VALUES, READER, UNSUBSCRIBE_URL, RenderSettings

SENT_AT = datetime(2026, 3, 7, 7, 0, 12, tzinfo=UTC)


def recipient(settings: Settings, email_address: str = READER, **fields: str) -> Recipient:
    return Recipient(
        email=email_address,
        message_id=make_message_id(settings, "e", 12, 3456),
        fields={**DIGEST_VALUES, "email": email_address, **fields},
    )


def content(part: MIMEPart | None) -> str:
    """A decoded part with LF line ends (the parser keeps CRLF; the last one belongs to the boundary)."""
    assert part is not None
    decoded: str = part.get_content()
    return decoded.replace("\r\n", "\n")


def parse(message: OutgoingMessage) -> EmailMessage:
    parsed = email.message_from_bytes(message.data, policy=email.policy.default)
    assert isinstance(parsed, EmailMessage)
    return parsed


@pytest.fixture
def template(settings_plain: Settings, daily: NewsletterConfig, rendered: RenderedEmail) -> MessageTemplate:
    return MessageTemplate.digest(settings_plain, daily, rendered, date=SENT_AT)


def test_both_parts_decode_to_the_personalised_render(
    template: MessageTemplate, settings_plain: Settings, rendered: RenderedEmail
) -> None:
    message = parse(template.build(recipient(settings_plain)))
    assert message.get_content_type() == "multipart/alternative"
    text_part, html_part = list(message.iter_parts())
    assert text_part.get_content_type() == "text/plain" and html_part.get_content_type() == "text/html"
    for part in (text_part, html_part):
        assert part.get_content_charset() == "utf-8"
        assert part["Content-Transfer-Encoding"] == "quoted-printable"
    assert content(text_part) == rendered.filled_text(DIGEST_VALUES).removesuffix("\n")
    assert content(html_part) == rendered.filled_html(DIGEST_VALUES).removesuffix("\n")
    assert message.defects == [] and all(part.defects == [] for part in (text_part, html_part))


def test_required_headers(template: MessageTemplate, settings_plain: Settings) -> None:
    built = template.build(recipient(settings_plain))
    message = parse(built)
    assert message["From"] == "London Daily <briefing@londondaily.example>"
    assert message["To"] == READER
    assert message["Subject"] == "The Daily Briefing: Saturday, 7 March 2026"
    assert parsedate_to_datetime(message["Date"]) == SENT_AT
    assert message["Message-ID"] == built.message_id
    assert re.fullmatch(r"<e\.12\.3456\.[a-z2-7]{8}@londondaily\.example>", built.message_id)
    assert message["List-Id"] == '"The Daily Briefing" <daily.londondaily.example>'
    assert message["List-Unsubscribe"] == f"<{UNSUBSCRIBE_URL}>"
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert message["MIME-Version"] == "1.0"
    assert message["Reply-To"] is None
    assert built.smtputf8 is False


def test_wire_format(template: MessageTemplate, settings_plain: Settings) -> None:
    data = template.build(recipient(settings_plain)).data
    assert data.isascii()
    assert b"\n" not in data.replace(b"\r\n", b"") and b"\r" not in data.replace(b"\r\n", b"")
    lines = data.split(b"\r\n")
    assert max(len(line) for line in lines) <= 998
    body = data.split(b"\r\n\r\n", 1)[1]
    assert max(len(line) for line in body.split(b"\r\n")) <= 76


def test_reply_to_mailto_and_non_ascii_subject(render_settings: RenderSettings) -> None:
    settings = render_settings(
        smtp={"reply_to": "desk@londondaily.example", "list_unsubscribe_mailto": "leave@londondaily.example"},
        newsletters=[{"id": "daily", "name": "Tägliche Übersicht", "reply_to": "editor@londondaily.example"}],
    )
    newsletter = settings.newsletters[0]
    rendered = DigestRenderer(settings).render_digest(newsletter, EDITION_DATE, stories())
    built = MessageTemplate.digest(settings, newsletter, rendered, date=SENT_AT).build(recipient(settings))
    raw_headers = built.data.split(b"\r\n\r\n", 1)[0]
    assert raw_headers.isascii() and b"=?utf-8?" in raw_headers
    message = parse(built)
    assert message["Subject"] == "Tägliche Übersicht: Saturday, 7 March 2026"
    assert message["Reply-To"] == "editor@londondaily.example"
    assert message["List-Unsubscribe"] == (
        f"<{UNSUBSCRIBE_URL}>, <mailto:leave@londondaily.example?subject=unsubscribe>"
    )
    assert str(message["List-Id"]).endswith("<daily.londondaily.example>")
    assert "Tägliche Übersicht" in str(message["List-Id"])


def test_message_id_is_deterministic_and_keyed(render_settings: RenderSettings) -> None:
    settings = render_settings()
    first = make_message_id(settings, "e", 12, 3456)
    assert first == make_message_id(settings, "e", 12, 3456)
    assert first != make_message_id(settings, "e", 12, 3457)
    assert first != make_message_id(settings, "e", 13, 3456)
    other_key = render_settings(security={"secret_key": "another-secret-0123456789"})
    assert first != make_message_id(other_key, "e", 12, 3456)
    assert first.startswith("<e.12.3456.") and first.endswith("@londondaily.example>")
    with pytest.raises(ValueError):
        make_message_id(settings, "e", "12>\r\nBcc: x@evil.example")


def test_same_recipient_same_bytes(template: MessageTemplate, settings_plain: Settings) -> None:
    assert template.build(recipient(settings_plain)).data == template.build(recipient(settings_plain)).data
    other = template.build(
        recipient(settings_plain, "other@example.com", unsubscribe_url=UNSUBSCRIBE_URL + "2")
    )
    assert parse(other)["To"] == "other@example.com"
    assert "other@example.com" in content(parse(other).get_body(("plain",)))


@pytest.mark.parametrize(
    ("email_address", "fields"),
    [
        ("reader@example.com\r\nBcc: victim@example.com", {}),
        ("reader@example.com\nBcc: victim@example.com", {}),
        ("Reader <reader@example.com>", {}),
        ("a@b.example, c@d.example", {}),
        (READER, {"unsubscribe_url": UNSUBSCRIBE_URL + "\r\nBcc: victim@example.com"}),
        (READER, {"unsubscribe_url": UNSUBSCRIBE_URL + ">, <https://evil.example/"}),
        (READER, {"unsubscribe_url": "javascript:alert(1)"}),
        (READER, {"preferences_url": "https://x.example/\rp"}),
        (READER, {"email": "reader@example.com\n"}),
    ],
)
def test_values_that_could_inject_headers_are_refused(
    template: MessageTemplate, settings_plain: Settings, email_address: str, fields: dict[str, str]
) -> None:
    with pytest.raises(ValueError):
        template.build(recipient(settings_plain, email_address, **fields))


def test_hostile_message_id_and_missing_field_are_refused(template: MessageTemplate) -> None:
    with pytest.raises(ValueError, match="message_id"):
        template.build(Recipient(READER, "<a@b>\r\nBcc: x@y", DIGEST_VALUES))
    with pytest.raises(ValueError, match="preferences_url"):
        fields = {k: v for k, v in DIGEST_VALUES.items() if k != "preferences_url"}
        template.build(Recipient(READER, "<a.b@londondaily.example>", fields))


def test_internationalised_address_needs_smtputf8(
    template: MessageTemplate, settings_plain: Settings
) -> None:
    built = template.build(recipient(settings_plain, "jörg@bücher.example"))
    assert built.smtputf8 is True
    message = email.message_from_bytes(built.data, policy=email.policy.SMTPUTF8)
    assert message["To"] == "jörg@bücher.example"
    assert "jörg@bücher.example" in content(message.get_body(("html",)))


def test_unknown_placeholder_in_a_template_is_refused(
    settings_plain: Settings, daily: NewsletterConfig
) -> None:
    tokens = PersonalTokens.fresh()
    broken = RenderedEmail("Subject", f"<p>{tokens.token('password')}</p>\n", "text\n", tokens)
    with pytest.raises(RenderError, match="password"):
        MessageTemplate.digest(settings_plain, daily, broken, date=SENT_AT)


def test_naive_date_is_refused(
    settings_plain: Settings, daily: NewsletterConfig, rendered: RenderedEmail
) -> None:
    with pytest.raises(ValueError, match="date"):
        MessageTemplate.digest(settings_plain, daily, rendered, date=datetime(2026, 3, 7, 7, 0))


def test_confirmation_message(
    settings_plain: Settings, renderer: DigestRenderer, daily: NewsletterConfig
) -> None:
    rendered = renderer.render_confirmation(daily)
    template = MessageTemplate.confirmation(settings_plain, rendered, date=SENT_AT)
    confirm_url = "https://londondaily.example/confirm/MTIz.abc-_"
    built = template.build(
        Recipient(
            "new@example.com",
            make_message_id(settings_plain, "c", 77),
            {"confirm_url": confirm_url, "email": "new@example.com"},
        )
    )
    message = parse(built)
    assert message["To"] == "new@example.com"
    assert message["Subject"] == "Confirm your subscription to The Daily Briefing"
    assert message["List-Unsubscribe"] is None
    assert confirm_url in content(message.get_body(("plain",)))
    assert f'href="{confirm_url}"' in content(message.get_body(("html",)))


values = st.text(alphabet=st.characters(blacklist_categories=("Cc", "Cs")), max_size=300)


# The fixtures are read-only here, so sharing them between examples is fine.
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(preferences=values)
def test_any_printable_value_round_trips(
    settings_plain: Settings, template: MessageTemplate, preferences: str
) -> None:
    message = parse(template.build(recipient(settings_plain, preferences_url=preferences)))
    text, page = (content(part) for part in message.iter_parts())
    assert f"Manage preferences: {preferences}\n" in text
    assert f'href="{html.escape(preferences)}"' in page
