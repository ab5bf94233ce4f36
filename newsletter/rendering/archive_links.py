"""Where an edition lives on the web, and the key a private archive's links carry.

The key signs the edition's id alone (no reader in it): every reader of an edition gets the same
link, and a key opens that edition only."""

from __future__ import annotations

import hmac
from collections.abc import Sequence
from datetime import date
from urllib.parse import urlencode

from itsdangerous import Signer

from newsletter.config import NewsletterConfig, Settings
from newsletter.rendering.links import utm_parameters, with_utm


class ArchiveLinks:
    def __init__(self, settings: Settings) -> None:
        self.base_url = settings.site.base_url
        self._signer = Signer(settings.security.secret_key.get_secret_value(), salt="newsletter.archive")

    def key(self, edition_id: int) -> str:
        return self._signer.get_signature(str(edition_id).encode()).decode()

    def opens(self, edition_id: int, key: str) -> bool:
        return hmac.compare_digest(self.key(edition_id), key)

    @staticmethod
    def index_path(newsletter_id: str) -> str:
        return f"/archive/{newsletter_id}"

    @staticmethod
    def edition_path(newsletter_id: str, day: date, sequence: int) -> str:
        """`/archive/daily/2026-12-07`; the day's extra editions `/archive/daily/2026-12-07/2`, …"""
        path = f"/archive/{newsletter_id}/{day.isoformat()}"
        return f"{path}/{sequence + 1}" if sequence else path

    def edition_url(
        self,
        newsletter: NewsletterConfig,
        edition_id: int,
        day: date,
        sequence: int,
        sections: Sequence[str] = (),
        *,
        keyed: bool = True,
    ) -> str:
        """The page's absolute URL: `sections` named when a reader's choice narrows the
        edition (see editions.selection.narrowed), the key when the archive is private (unless
        not `keyed`)."""
        query: list[tuple[str, str]] = []
        if sections:
            query.append(("sections", ",".join(sections)))
        if keyed and newsletter.archive == "private":
            query.append(("key", self.key(edition_id)))
        url = self.base_url + self.edition_path(newsletter.id, day, sequence)
        return f"{url}?{urlencode(query)}" if query else url

    def view_in_browser(
        self,
        newsletter: NewsletterConfig,
        edition_id: int,
        day: date,
        sequence: int,
        sections: Sequence[str] = (),
    ) -> str:
        """The email's "View in your browser" link ("" with the archive off), with the
        newsletter's UTM parameters."""
        if newsletter.archive == "off":
            return ""
        url = self.edition_url(newsletter, edition_id, day, sequence, sections)
        return with_utm(url, utm_parameters(newsletter))
