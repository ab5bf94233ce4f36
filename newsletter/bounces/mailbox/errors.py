"""What goes wrong reaching the bounce mailbox, naming the setting to look at."""

from __future__ import annotations

from newsletter.errors import NewsletterError

KEY = "bounces.mailbox"


class MailboxUnavailable(NewsletterError, ConnectionError):
    """The mailbox could not be reached, or refused us; one line. `setting` names the
    `bounces.mailbox.*` key at fault when one is (the message starts with it)."""

    def __init__(self, message: str, *, setting: str | None = None) -> None:
        super().__init__(f"{KEY}.{setting}: {message}" if setting else message)
        self.setting = f"{KEY}.{setting}" if setting else None
