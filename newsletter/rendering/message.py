"""Whole MIME messages serialised once per variant, split at the personal fields, joined per
recipient in microseconds (no Jinja2, premailer or EmailMessage on that path)."""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime

from newsletter.config import NewsletterConfig, Settings
from newsletter.errors import RenderError
from newsletter.rendering.digest import RenderedEmail
from newsletter.rendering.dkim import DkimSigner, PendingSignature, SigningPlan, field_name, header_fields
from newsletter.rendering.headers import (
    DELIVERY,
    MESSAGE_ID,
    TO,
    UNSUBSCRIBE,
    HeaderBlock,
    Segment,
    confirmation_headers,
    digest_headers,
)
from newsletter.rendering.mime import CRLF, boundary, open_ended, part_header, qp_segment, quoted_printable
from newsletter.rendering.placeholders import CONFIRMATION_FIELDS, DIGEST_FIELDS, PersonalTokens
from newsletter.rendering.wire import StuffedLayout

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_ADDRESS = re.compile(r"[^\s<>()\[\],;:\"\\@\x00-\x1f\x7f]{1,64}@[^\s<>()\[\],;:\"\\@\x00-\x1f\x7f]{1,255}")
_MESSAGE_ID = re.compile(r"<[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]{1,200}@[A-Za-z0-9.-]{1,200}>")
_HEADER_URL = re.compile(r"https?://[!#-;=?-~]{1,900}")  # printable ASCII but space " < >


@dataclass(frozen=True)
class Recipient:
    email: str  # normalised address (may be internationalised)
    message_id: str  # "<...@domain>", from make_message_id
    # digest: unsubscribe_url, preferences_url, email; confirmation: confirm_url, email
    fields: Mapping[str, str]
    # The X-Newsletter-Delivery value: the ledger row's bounce tag ("none" for a preview).
    delivery: str = "none"


@dataclass(frozen=True)
class OutgoingMessage:
    message_id: str
    data: bytes  # CRLF line ends, no line over 998 octets
    smtputf8: bool
    # data is DATA's payload: dot-stuffed, ".\r\n" at the end (MessageTemplate.for_smtp)
    dot_stuffed: bool = False

    def signed(self, signature_headers: bytes) -> OutgoingMessage:
        """The message with its DKIM-Signature header lines put on top."""
        return replace(self, data=signature_headers + self.data)


def _clean(name: str, value: str) -> str:
    if _CONTROL.search(value):
        raise ValueError(f"{name}: control characters (CR, LF, ...) are not allowed")
    return value


def _header_value(name: str, pattern: re.Pattern[str]) -> Callable[[str], bytes]:
    def encode(value: str) -> bytes:
        if not pattern.fullmatch(_clean(name, value)):
            raise ValueError(f"{name}: not usable in a header")
        return value.encode("utf-8")

    return encode


def _text_value(name: str) -> Callable[[str], bytes]:
    return lambda value: open_ended(quoted_printable(_clean(name, value).encode("utf-8")))


def _html_value(name: str) -> Callable[[str], bytes]:
    return lambda value: open_ended(quoted_printable(html.escape(_clean(name, value)).encode("utf-8")))


_RECIPIENT_EMAIL, _RECIPIENT_MESSAGE_ID = "recipient.email", "recipient.message_id"
_RECIPIENT_DELIVERY = "recipient.delivery"
_DELIVERY_TAG = re.compile(r"[a-z0-9-]{1,40}")
# slot -> (where its value comes from: Recipient.email, .message_id or a field name; its encoder)
_HEADER_SLOTS: dict[str, tuple[str, Callable[[str], bytes]]] = {
    TO: (_RECIPIENT_EMAIL, _header_value("email", _ADDRESS)),
    MESSAGE_ID: (_RECIPIENT_MESSAGE_ID, _header_value("message_id", _MESSAGE_ID)),
    UNSUBSCRIBE: ("unsubscribe_url", _header_value("unsubscribe_url", _HEADER_URL)),
    DELIVERY: (_RECIPIENT_DELIVERY, _header_value("delivery", _DELIVERY_TAG)),
}


class MessageTemplate:
    """A serialised message with slots; `build` fills them for one recipient."""

    def __init__(
        self,
        head: list[Segment],
        body: list[Segment],
        *,
        signer: DkimSigner | None = None,
        smtputf8: bool = False,
    ) -> None:
        """`head`: the header fields; `body`: what follows the empty line after them."""
        self._head = _merge_constants(head)
        self._body = _merge_constants(body)
        # The whole message as DATA carries it: fixed pieces dot-stuffed here, once.
        self._wire = StuffedLayout(_merge_constants([*head, CRLF, *body]))
        slots = [segment for segment in (*head, *body) if isinstance(segment, str)]
        self._plan = [(slot, *_slot_source(slot)) for slot in dict.fromkeys(slots)]
        self._signing: SigningPlan | None = None
        self._signed_fields: list[list[Segment]] = []  # the fields the signing plan takes per message
        if signer is not None:
            body_parts = [None if isinstance(part, str) else part for part in self._body]
            fields = _header_fields(head)
            names = [field_name(_marked(field)) for field in fields]
            constant = [None if _has_slot(field) else _marked(field) for field in fields]
            self._signing = signer.plan(constant, names, body=body_parts)
            self._signed_fields = [fields[i] for i in self._signing.personal_fields(names)]
        self._smtputf8 = smtputf8

    @classmethod
    def digest(
        cls,
        settings: Settings,
        newsletter: NewsletterConfig,
        rendered: RenderedEmail,
        *,
        date: datetime,
        signer: DkimSigner | None = None,
    ) -> MessageTemplate:
        """`signer`: one made already (its key parsed once); else one from settings.dkim."""
        head = digest_headers(settings, newsletter, rendered.subject, date)
        return cls._assemble(settings, rendered, head, DIGEST_FIELDS, signer)

    @classmethod
    def confirmation(
        cls, settings: Settings, rendered: RenderedEmail, *, date: datetime, signer: DkimSigner | None = None
    ) -> MessageTemplate:
        head = confirmation_headers(settings, rendered.subject, date)
        return cls._assemble(settings, rendered, head, CONFIRMATION_FIELDS, signer)

    @classmethod
    def _assemble(
        cls,
        settings: Settings,
        rendered: RenderedEmail,
        head: HeaderBlock,
        allowed: frozenset[str],
        signer: DkimSigner | None,
    ) -> MessageTemplate:
        text = _with_final_newline(rendered.text)
        page = _with_final_newline(rendered.html)
        tokens = rendered.tokens
        unknown = tokens.fields_in(text, page) - allowed
        if unknown:
            raise RenderError(f"template uses unknown personal fields: {', '.join(sorted(unknown))}")
        mark = boundary(text.encode("utf-8"), page.encode("utf-8"))
        delimiter = f"--{mark}\r\n".encode("ascii")
        header = [
            *head.segments,
            b"MIME-Version: 1.0\r\n",
            f'Content-Type: multipart/alternative;\r\n boundary="{mark}"\r\n'.encode("ascii"),
        ]
        body: list[Segment] = [
            delimiter,
            part_header("text/plain"),
            *_body_segments(tokens, text, "text"),
            delimiter,
            part_header("text/html"),
            *_body_segments(tokens, page, "html"),
            f"--{mark}--\r\n".encode("ascii"),
        ]
        if signer is None and settings.dkim.enabled:
            signer = DkimSigner(settings.dkim)
        return cls(header, body, signer=signer, smtputf8=head.utf8)

    @property
    def signs(self) -> bool:
        """True when its messages carry a DKIM signature (see `for_smtp`)."""
        return self._signing is not None

    def build(self, recipient: Recipient) -> OutgoingMessage:
        """Raise ValueError for a value that could break the message (CR, LF, a bad address).
        A signing template signs here, on this thread."""
        values = self._values(recipient)
        head = self._join(self._head, values)
        body = self._join(self._body, values)
        data = head + CRLF + body
        if self._signing is not None:
            data = b"".join(pending.complete() for pending in self._pending(values, lambda: body)) + data
        return OutgoingMessage(recipient.message_id, data, self._utf8(recipient))

    def for_smtp(self, recipient: Recipient) -> tuple[OutgoingMessage, list[PendingSignature]]:
        """The message as DATA's payload (dot-stuffed, without its DKIM-Signature lines), and
        its signatures hashed and ready for their keys (none when the template does not sign):
        the key operations, ~0.3 ms each with RSA-2048, may run on another thread. ValueError
        as `build`."""
        values = self._values(recipient)
        payload = self._wire.join(values)
        message = OutgoingMessage(recipient.message_id, payload, self._utf8(recipient), dot_stuffed=True)
        if self._signing is None:
            return message, []
        return message, self._pending(values, lambda: self._join(self._body, values))

    def _pending(self, values: dict[str, bytes], body: Callable[[], bytes]) -> list[PendingSignature]:
        """The signatures of a signing template's message, hashed and ready for their keys."""
        assert self._signing is not None
        personal = [self._join(field, values) for field in self._signed_fields]
        return self._signing.pending(personal, body, self._own(values))

    def _values(self, recipient: Recipient) -> dict[str, bytes]:
        fields = recipient.fields
        values: dict[str, bytes] = {}
        for slot, source, encode in self._plan:
            if source == _RECIPIENT_EMAIL:
                raw = recipient.email
            elif source == _RECIPIENT_MESSAGE_ID:
                raw = recipient.message_id
            elif source == _RECIPIENT_DELIVERY:
                raw = recipient.delivery
            elif source in fields:
                raw = fields[source]
            else:
                raise ValueError(f"recipient field missing: {source}")
            values[slot] = encode(raw)
        return values

    @staticmethod
    def _join(segments: list[Segment], values: dict[str, bytes]) -> bytes:
        return b"".join([part if isinstance(part, bytes) else values[part] for part in segments])

    def _own(self, values: dict[str, bytes]) -> list[bytes]:
        """The recipient's values in the body, in order (what the signing plan's parts leave out)."""
        return [values[part] for part in self._body if isinstance(part, str)]

    def _utf8(self, recipient: Recipient) -> bool:
        return self._smtputf8 or not recipient.email.isascii()


def _slot_source(slot: str) -> tuple[str, Callable[[str], bytes]]:
    if slot in _HEADER_SLOTS:
        return _HEADER_SLOTS[slot]
    kind, field = slot.split(":", 1)
    return field, (_html_value(field) if kind == "html" else _text_value(field))


def _header_fields(segments: list[Segment]) -> list[list[Segment]]:
    """The header block (`segments`) cut into its fields (each CRLF-terminated), each field the
    pieces and slots it is joined from."""
    slots = iter([segment for segment in segments if isinstance(segment, str)])
    fields: list[list[Segment]] = []
    for field in header_fields(_marked(segments)):
        first, *rest = field.split(b"\x00")  # no header bytes hold NUL: each one is a slot
        pieces: list[Segment] = [first]
        for after in rest:
            pieces += [next(slots), after]
        fields.append([piece for piece in pieces if piece != b""])
    return fields


def _marked(segments: list[Segment]) -> bytes:
    """The segments joined with a NUL where each slot is."""
    return b"".join(segment if isinstance(segment, bytes) else b"\x00" for segment in segments)


def _has_slot(segments: list[Segment]) -> bool:
    return any(isinstance(segment, str) for segment in segments)


def _body_segments(tokens: PersonalTokens, body: str, kind: str) -> list[Segment]:
    pieces = tokens.split(body)  # text, field, text, field, ..., text
    segments: list[Segment] = []
    for index, piece in enumerate(pieces):
        segments.append(qp_segment(piece) if index % 2 == 0 else f"{kind}:{piece}")
    return segments


def _merge_constants(segments: list[Segment]) -> list[Segment]:
    merged: list[Segment] = []
    for segment in segments:
        if isinstance(segment, bytes) and merged and isinstance(merged[-1], bytes):
            merged[-1] = merged[-1] + segment
        else:
            merged.append(segment)
    return merged


def _with_final_newline(text: str) -> str:
    return text if text.endswith("\n") else text + "\n"
