"""Each recipient's personal part of a message, built in one place for sends, previews, test
copies and the demo: their address, their signed links, a Message-ID."""

from __future__ import annotations

import hmac
import re

from newsletter.config import Settings
from newsletter.personal.links import Links
from newsletter.personal.mac import KeyedMac
from newsletter.personal.tokens import LinkOwner
from newsletter.personal.verp import BounceTags, TagKind
from newsletter.rendering.message import Recipient

_ID_LABEL = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*(?:\.[A-Za-z0-9_-]+)*")
_OUR_ID = re.compile(r"<([A-Za-z0-9][A-Za-z0-9_-]*(?:\.[A-Za-z0-9_-]+)*)\.([a-z2-7]{8})@([^<>@\s]+)>")
# Links for nobody in particular (previews, test copies): subscriber 0 does not exist.
NOBODY = LinkOwner(0, "0" * 12)
# The reader a preview's or test copy's tracked links name: no delivery, so a click counts nothing.
PREVIEW_READER = "preview"


def make_message_id(settings: Settings, kind: str, *parts: int | str) -> str:
    """Deterministic: the same kind and parts give the same id; a keyed hash makes ids
    unguessable. make_message_id(s, "e", 12, 3456) -> "<e.12.3456.k3j4m2qa@londondaily.example>"."""
    return MessageIds(settings).make(kind, *parts)


class MessageIds:
    """make_message_id with the key and domain read once: one per recipient per edition."""

    def __init__(self, settings: Settings) -> None:
        self._mac = KeyedMac(settings.security.secret_key.get_secret_value().encode("utf-8"), "sha256")
        self._domain = settings.smtp.sender_domain

    def make(self, kind: str, *parts: int | str) -> str:
        label = ".".join([kind, *(str(part) for part in parts)])
        if not _ID_LABEL.fullmatch(label):
            raise ValueError(f"message id parts must be letters, digits, '-' or '_': {label!r}")
        return self._id(label)

    def digest(self, edition_id: int, subscriber_id: int) -> str:
        """make("e", edition_id, subscriber_id): two numbers always make a valid label."""
        return self._id(f"e.{int(edition_id)}.{int(subscriber_id)}")

    def read(self, message_id: str | None) -> tuple[str, ...] | None:
        """The kind and parts of a Message-ID this key made ("e", "12", "3456"); None for any
        other (a forged one, another sender's, one from a previous secret key)."""
        found = _OUR_ID.fullmatch((message_id or "").strip())
        if found is None or found.group(3).lower() != self._domain.lower():
            return None
        label, tag = found.group(1), found.group(2)
        digest = self._mac.digest(b"message-id\0" + label.encode("ascii"))
        if not hmac.compare_digest(tag, _base32_tag(digest)):
            return None
        return tuple(label.split("."))

    def _id(self, label: str) -> str:
        digest = self._mac.digest(b"message-id\0" + label.encode("ascii"))
        return f"<{label}.{_base32_tag(digest)}@{self._domain}>"


# Base32 (RFC 4648, lower case) of every 10-bit value: a 40-bit tag is four look-ups.
_BASE32 = "abcdefghijklmnopqrstuvwxyz234567"
_BASE32_PAIRS = [a + b for a in _BASE32 for b in _BASE32]


def _base32_tag(digest: bytes) -> str:
    """base64.b32encode(digest[:5]).decode().lower(), without the generic encoder."""
    n = int.from_bytes(digest[:5], "big")
    pairs = _BASE32_PAIRS
    return pairs[n >> 30] + pairs[(n >> 20) & 1023] + pairs[(n >> 10) & 1023] + pairs[n & 1023]


class PersonalMail:
    """Recipients of digests and confirmations, with their fields and Message-IDs."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.links = Links(settings)
        self.message_ids = MessageIds(settings)
        self.bounce_tags = BounceTags(settings)

    def digest_fields(
        self, owner: LinkOwner, email: str, newsletter_id: str, reader_tag: str = PREVIEW_READER
    ) -> dict[str, str]:
        return {
            "unsubscribe_url": self.links.unsubscribe(owner, newsletter_id),
            "preferences_url": self.links.preferences(owner),
            "email": email,
            "reader_tag": reader_tag,
        }

    def digest(
        self, owner: LinkOwner, email: str, newsletter_id: str, edition_id: int, delivery_id: int
    ) -> Recipient:
        """A reader's copy of an edition (`delivery_id`: its ledger row): the same Message-ID
        every time it is sent to them."""
        message_id = self.message_ids.digest(edition_id, owner.subscriber_id)
        tag = self.bounce_tags.tag(TagKind.DELIVERY, delivery_id)
        return Recipient(email, message_id, self.digest_fields(owner, email, newsletter_id, tag), tag)

    def sample(self, email: str, newsletter_id: str, tag: str, owner: LinkOwner = NOBODY) -> Recipient:
        """A digest for a preview, a dry run or a test copy (`tag` names which)."""
        message_id = self.message_ids.make(tag, newsletter_id, owner.subscriber_id)
        return Recipient(email, message_id, self.digest_fields(owner, email, newsletter_id))

    def confirmation(
        self, owner: LinkOwner, email: str, newsletter_id: str | None, message_key: int
    ) -> Recipient:
        """A confirmation email; `message_key` is its outbox row, so a resend keeps its id."""
        fields = {"confirm_url": self.links.confirm(owner, newsletter_id), "email": email}
        tag = self.bounce_tags.tag(TagKind.MESSAGE, message_key)
        return Recipient(email, self.message_ids.make("c", message_key), fields, tag)
