"""Click tokens: `/r/<edition>-<article>-<mac>` names one article of one edition, signed (80 bits
of HMAC-SHA256, its own purpose), so the redirect only ever leads to a stored article's URL:
never a free URL, so never an open redirect. Nothing personal in it; a per-reader link adds the
delivery's bounce tag (personal.verp) after a slash."""

from __future__ import annotations

import base64
import functools
import hmac
import re
from dataclasses import dataclass

from newsletter.config import NewsletterConfig, Settings
from newsletter.personal.mac import KeyedMac

_MAC_BYTES = 10
_TOKEN = re.compile(r"([1-9][0-9]{0,9})-([1-9][0-9]{0,9})-([a-z2-7]{16})")


@dataclass(frozen=True)
class ClickTarget:
    edition_id: int
    article_id: int


class ClickLinks:
    def __init__(self, settings: Settings) -> None:
        self._keyed = KeyedMac(settings.security.secret_key.get_secret_value().encode("utf-8"), "sha256")
        self.base_url = settings.site.base_url
        self._checked = functools.lru_cache(maxsize=8192)(self._check)

    def token(self, edition_id: int, article_id: int) -> str:
        label = f"{int(edition_id)}-{int(article_id)}"
        return f"{label}-{self._mac(label)}"

    def link(self, newsletter: NewsletterConfig, edition_id: int, article_id: int, reader: str) -> str:
        """The article's link in an email of `newsletter`: straight to the article when it does not
        track (""), else the redirect; `reader` is the per-reader slot (a personal field's token)."""
        if newsletter.tracking == "off":
            return ""
        url = f"{self.base_url}/r/{self.token(edition_id, article_id)}"
        return f"{url}/{reader}" if newsletter.tracking == "per_reader" else url

    def open_pixel(self, newsletter: NewsletterConfig, reader: str) -> str:
        return f"{self.base_url}/r/open/{reader}.gif" if newsletter.tracking == "per_reader" else ""

    def read(self, token: str) -> ClickTarget | None:
        """What a genuine token names; None for a forged, truncated or foreign one."""
        return self._checked(token) if len(token) <= 60 else None

    def _check(self, token: str) -> ClickTarget | None:
        found = _TOKEN.fullmatch(token)
        if found is None:
            return None
        edition, article, mac = found.groups()
        if not hmac.compare_digest(mac, self._mac(f"{edition}-{article}")):
            return None
        return ClickTarget(int(edition), int(article))

    def _mac(self, label: str) -> str:
        digest = self._keyed.digest(b"click\0" + label.encode("ascii"))
        return base64.b32encode(digest[:_MAC_BYTES]).decode("ascii").lower()


class EditionTracking:
    """The tracked links of one edition's emails (rendering.digest.Tracking)."""

    def __init__(self, links: ClickLinks, newsletter: NewsletterConfig, edition_id: int) -> None:
        self._links, self._newsletter, self._edition_id = links, newsletter, edition_id

    def link(self, article_id: int, reader: str) -> str:
        return self._links.link(self._newsletter, self._edition_id, article_id, reader)

    def pixel(self, reader: str) -> str:
        return self._links.open_pixel(self._newsletter, reader)
