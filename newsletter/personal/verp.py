"""Bounce tags: a short signed name for one ledger row, carried in each message's envelope
sender (VERP: `bounces+d1234-<mac>@bounce.example`) and in its X-Newsletter-Delivery header,
so a bounce that comes back names the delivery it belongs to, and a forged one names nothing.

d1234-k3j4m2qa5b6c7d8e: "d" a delivery (an edition's row), "m" an outbox message (a
confirmation); then the row id; then 80 bits of HMAC-SHA256 over both, in lower-case base32.
Lower case because some mail systems lower-case the local part they bounce to.
"""

from __future__ import annotations

import base64
import functools
import hmac
import re
from dataclasses import dataclass
from enum import StrEnum

from newsletter.config import Settings
from newsletter.personal.mac import KeyedMac

_MAC_BYTES = 10
_TAG = re.compile(r"([dm])([1-9][0-9]{0,18})-([a-z2-7]{16})")


class TagKind(StrEnum):
    DELIVERY = "d"
    MESSAGE = "m"


@dataclass(frozen=True)
class BounceTag:
    kind: TagKind
    row_id: int


class BounceTags:
    """Makes and checks tags with the secret key read once; the envelope sender for each row."""

    def __init__(self, settings: Settings) -> None:
        self._keyed = KeyedMac(settings.security.secret_key.get_secret_value().encode("utf-8"), "sha256")
        bounces = settings.bounces
        self._verp = bounces.verp
        self._local_part, self._domain = bounces.local_part, bounces.domain
        self._plain_sender = settings.smtp.from_address
        self._checked = functools.lru_cache(maxsize=4096)(self._check)

    def tag(self, kind: TagKind, row_id: int) -> str:
        label = f"{kind.value}{int(row_id)}"
        return f"{label}-{self._mac(label)}"

    def return_path(self, kind: TagKind, row_id: int) -> str:
        """The envelope sender for one row: its VERP address with [bounces], else smtp.from_address."""
        if not self._verp:
            return self._plain_sender
        return f"{self._local_part}+{self.tag(kind, row_id)}@{self._domain}"

    def read(self, text: str | None) -> BounceTag | None:
        """The row a tag names, when `text` is a genuine tag (any case); else None. Remembered:
        the receiver checks a tag at RCPT and the recorder again."""
        if not text:
            return None
        return self._checked(text)

    def _check(self, text: str) -> BounceTag | None:
        found = _TAG.fullmatch(text.strip().lower())
        if found is None:
            return None
        kind, row_id, mac = found.groups()
        if not hmac.compare_digest(mac, self._mac(f"{kind}{row_id}")):
            return None
        return BounceTag(TagKind(kind), int(row_id))

    def read_address(self, address: str | None) -> BounceTag | None:
        """The row a VERP address names (`local+tag@domain`, our domain only); else None."""
        if not address or not self._verp:
            return None
        local, _, domain = address.strip().strip("<>").rpartition("@")
        if domain.lower() != self._domain or not local.lower().startswith(self._local_part.lower() + "+"):
            return None
        return self.read(local[len(self._local_part) + 1 :])

    def _mac(self, label: str) -> str:
        digest = self._keyed.digest(b"verp\0" + label.encode("ascii"))
        return base64.b32encode(digest[:_MAC_BYTES]).decode("ascii").lower()
