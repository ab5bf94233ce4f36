"""Each recipient's personal part of a message, built in one place for sends, previews, test
copies and the demo: their address, their signed links, a Message-ID."""

from __future__ import annotations

import base64
import hmac
import re

from newsletter.config import Settings
from newsletter.personal.links import Links
from newsletter.personal.tokens import LinkOwner
from newsletter.rendering.message import Recipient

_ID_LABEL = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*(?:\.[A-Za-z0-9_-]+)*")
# Links for nobody in particular (previews, test copies): subscriber 0 does not exist.
NOBODY = LinkOwner(0, "0" * 12)


def make_message_id(settings: Settings, kind: str, *parts: int | str) -> str:
    """Deterministic: the same kind and parts give the same id; a keyed hash makes ids
    unguessable. make_message_id(s, "e", 12, 3456) -> "<e.12.3456.k3j4m2qa@londondaily.example>"."""
    label = ".".join([kind, *(str(part) for part in parts)])
    if not _ID_LABEL.fullmatch(label):
        raise ValueError(f"message id parts must be letters, digits, '-' or '_': {label!r}")
    key = settings.security.secret_key.get_secret_value().encode("utf-8")
    digest = hmac.new(key, b"message-id\0" + label.encode("ascii"), "sha256").digest()
    tag = base64.b32encode(digest[:5]).decode("ascii").lower()
    return f"<{label}.{tag}@{settings.smtp.sender_domain}>"


class PersonalMail:
    """Recipients of digests and confirmations, with their fields and Message-IDs."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.links = Links(settings)

    def digest_fields(self, owner: LinkOwner, email: str, newsletter_id: str) -> dict[str, str]:
        return {
            "unsubscribe_url": self.links.unsubscribe(owner, newsletter_id),
            "preferences_url": self.links.preferences(owner),
            "email": email,
        }

    def digest(self, owner: LinkOwner, email: str, newsletter_id: str, edition_id: int) -> Recipient:
        """A reader's copy of an edition: the same Message-ID every time it is sent to them."""
        message_id = make_message_id(self.settings, "e", edition_id, owner.subscriber_id)
        return Recipient(email, message_id, self.digest_fields(owner, email, newsletter_id))

    def sample(self, email: str, newsletter_id: str, tag: str, owner: LinkOwner = NOBODY) -> Recipient:
        """A digest for a preview, a dry run or a test copy (`tag` names which)."""
        message_id = make_message_id(self.settings, tag, newsletter_id, owner.subscriber_id)
        return Recipient(email, message_id, self.digest_fields(owner, email, newsletter_id))

    def confirmation(
        self, owner: LinkOwner, email: str, newsletter_id: str | None, message_key: int
    ) -> Recipient:
        """A confirmation email; `message_key` is its outbox row, so a resend keeps its id."""
        fields = {"confirm_url": self.links.confirm(owner, newsletter_id), "email": email}
        return Recipient(email, make_message_id(self.settings, "c", message_key), fields)
