"""Absolute links put in emails: confirm, unsubscribe, preferences."""

from __future__ import annotations

from newsletter.config import Settings
from newsletter.subscriptions.tokens import Purpose, TokenSigner


class Links:
    def __init__(self, settings: Settings) -> None:
        self.base_url = settings.site.base_url
        self.signer = TokenSigner(
            settings.security.secret_key.get_secret_value(),
            settings.security.confirm_max_age_days * 86400,
        )

    def confirm(self, subscriber_id: int, newsletter_id: str | None = None) -> str:
        return f"{self.base_url}/confirm/{self.signer.sign(Purpose.CONFIRM, subscriber_id, newsletter_id)}"

    def unsubscribe(self, subscriber_id: int, newsletter_id: str | None = None) -> str:
        token = self.signer.sign(Purpose.UNSUBSCRIBE, subscriber_id, newsletter_id)
        return f"{self.base_url}/unsubscribe/{token}"

    def preferences(self, subscriber_id: int) -> str:
        return f"{self.base_url}/preferences/{self.signer.sign(Purpose.PREFERENCES, subscriber_id)}"
