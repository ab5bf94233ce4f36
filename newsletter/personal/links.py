"""Absolute links put in emails and pages: confirm, unsubscribe, preferences."""

from __future__ import annotations

from newsletter.config import Settings
from newsletter.personal.tokens import LinkOwner, Purpose, TokenSigner

DAY = 86400


def token_signer(settings: Settings) -> TokenSigner:
    security = settings.security
    return TokenSigner(
        security.secret_key.get_secret_value(),
        {
            Purpose.CONFIRM: security.confirm_max_age_days * DAY,
            Purpose.PREFERENCES: security.preferences_max_age_days * DAY,
        },
    )


class Links:
    def __init__(self, settings: Settings) -> None:
        self.base_url = settings.site.base_url
        self.signer = token_signer(settings)

    def confirm(self, owner: LinkOwner, newsletter_id: str | None = None) -> str:
        return f"{self.base_url}/confirm/{self.signer.sign(Purpose.CONFIRM, owner, newsletter_id)}"

    def unsubscribe(self, owner: LinkOwner, newsletter_id: str | None = None) -> str:
        return f"{self.base_url}/unsubscribe/{self.signer.sign(Purpose.UNSUBSCRIBE, owner, newsletter_id)}"

    def preferences(self, owner: LinkOwner) -> str:
        return f"{self.base_url}/preferences/{self.signer.sign(Purpose.PREFERENCES, owner)}"
