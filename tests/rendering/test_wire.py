"""DATA's payload joined from pre-stuffed pieces: byte for byte what stuffing the whole message
at once gives, wherever a line that starts with a dot falls (inside a fixed piece, at the start
of a reader's value, across the join of two pieces)."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from newsletter.config import NewsletterConfig, Settings
from newsletter.delivery.smtp import dot_stuff
from newsletter.personal.recipients import make_message_id
from newsletter.rendering import MessageTemplate, PersonalTokens, Recipient, RenderedEmail
from newsletter.rendering.wire import StuffedLayout, join_stuffed, stuff_within
from tests.rendering.conftest import DIGEST_VALUES, READER

SENT_AT = datetime(2026, 3, 7, 7, 0, tzinfo=UTC)
# Pieces made of what matters to stuffing: dots, CR, LF and their runs.
pieces = st.lists(
    st.sampled_from([b".", b"\r", b"\n", b"a", b"\r\n", b"\r\n.", b"..", b""]).map(bytes), max_size=12
)


@settings(max_examples=2000, deadline=None)
@given(parts=st.lists(pieces.map(b"".join), max_size=8))
def test_joining_stuffed_pieces_is_stuffing_the_whole(parts: list[bytes]) -> None:
    assert join_stuffed(stuff_within(part) for part in parts) == dot_stuff(b"".join(parts))


@settings(max_examples=2000, deadline=None)
@given(
    layout=st.lists(st.one_of(pieces.map(b"".join), st.sampled_from(["a", "b"])), max_size=8),
    a=pieces.map(b"".join),
    b=pieces.map(b"".join),
)
def test_a_layout_filled_is_the_whole_message_stuffed(layout: list[bytes | str], a: bytes, b: bytes) -> None:
    values = {"a": a, "b": b}
    whole = b"".join(values[piece] if isinstance(piece, str) else piece for piece in layout)
    assert StuffedLayout(layout).join(values) == dot_stuff(whole)


def test_a_layout_without_dots_at_its_joins_is_joined_as_is() -> None:
    layout = StuffedLayout([b"To: ", "to", b"\r\n\r\nline\r\n.dot inside\r\n", "link", b"\r\nend\r\n"])
    assert layout.join({"to": b"a@b.example", "link": b"https://l.example/u"}) == (
        b"To: a@b.example\r\n\r\nline\r\n..dot inside\r\nhttps://l.example/u\r\nend\r\n.\r\n"
    )
    assert layout.join({"to": b"a@b.example", "link": b".starts"}).count(b"\r\n..starts") == 1


def test_the_joins_that_make_a_line_start() -> None:
    assert join_stuffed([b"a\r\n", b".b"]) == b"a\r\n..b\r\n.\r\n"
    assert join_stuffed([b"a\r", b"\n.b"]) == b"a\r\n..b\r\n.\r\n"
    assert join_stuffed([b"a\r", b"\n", b"", b".b\r\n"]) == b"a\r\n..b\r\n.\r\n"
    assert join_stuffed([b".", b"x"]) == b"..x\r\n.\r\n"
    assert join_stuffed([]) == b"\r\n.\r\n"


def dotted_template(
    settings: Settings, newsletter: NewsletterConfig
) -> tuple[MessageTemplate, PersonalTokens]:
    """A digest whose fixed text starts lines with dots and puts a reader's value at a line start."""
    tokens = PersonalTokens.fresh()
    token = tokens.placeholders(["preferences_url", "unsubscribe_url", "email"])
    text = f".Lead story\n..two dots\n.\n{token['preferences_url']}\nLeave: {token['unsubscribe_url']}\n"
    page = f'<p>.x</p>\n.<b>{token["email"]}</b>\n<a href="{token["unsubscribe_url"]}">leave</a>\n'
    rendered = RenderedEmail(subject=".Dots", html=page, text=text, tokens=tokens)
    return MessageTemplate.digest(settings, newsletter, rendered, date=SENT_AT), tokens


values = st.text(alphabet=st.sampled_from([".", "a", "/", "=", " ", "é"]), min_size=1, max_size=200)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(preferences=values)
def test_a_template_for_smtp_is_its_message_stuffed(
    settings_plain: Settings, daily: NewsletterConfig, preferences: str
) -> None:
    template, _ = dotted_template(settings_plain, daily)
    reader = Recipient(
        READER,
        make_message_id(settings_plain, "e", 1, 2),
        {**DIGEST_VALUES, "preferences_url": preferences},
    )
    wire, sign = template.for_smtp(reader)
    assert sign == [] and wire.dot_stuffed
    assert wire.data == dot_stuff(template.build(reader).data)
    assert not template.build(reader).dot_stuffed


def test_a_value_at_a_line_start_is_stuffed(settings_plain: Settings, daily: NewsletterConfig) -> None:
    template, _ = dotted_template(settings_plain, daily)
    reader = Recipient(
        READER, make_message_id(settings_plain, "e", 1, 2), {**DIGEST_VALUES, "preferences_url": ".x"}
    )
    wire, _ = template.for_smtp(reader)
    assert b"\r\n...x" not in wire.data and b"\r\n..x" in wire.data
    assert b"\r\n..Lead story\r\n" in wire.data and wire.data.endswith(b"\r\n.\r\n")
