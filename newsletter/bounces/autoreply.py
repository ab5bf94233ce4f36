"""Automatic replies (RFC 3834 and older conventions): recognised so they can be ignored."""

from __future__ import annotations

import re
from email.message import Message

from newsletter.bounces.reading import header

# Headers that only responders set; Auto-Submitted alone is not enough, relays put
# "auto-replied" on bounces too, so the caller asks only once a message is no bounce.
RESPONDER_HEADERS = ("X-Autoreply", "X-Autorespond", "X-Autoresponder", "X-Vacation", "X-Apple-Auto-Reply")
SUBJECT = re.compile(
    r"auto(matic|matische)?[ -]?(reply|response|respons|antwort)|out of (the )?office|away from|vacation"
    r"|abwesenheit|absence|r[ée]ponse automatique|autoreply|\baway until",
    re.IGNORECASE,
)


def is_autoreply(message: Message) -> bool:
    if any(header(message, name) for name in RESPONDER_HEADERS):
        return True
    if (header(message, "Precedence") or "").lower() == "auto_reply":
        return True
    if (header(message, "Auto-Submitted") or "").lower().startswith("auto-replied"):
        return True
    return bool(SUBJECT.search(header(message, "Subject") or ""))
