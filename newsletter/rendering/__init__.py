"""Digest rendering: templates rendered and inlined once per variant, personalised per recipient."""

from __future__ import annotations

from newsletter.rendering.digest import DigestRenderer, RenderedEmail, digest_subject
from newsletter.rendering.message import MessageTemplate, OutgoingMessage, Recipient
from newsletter.rendering.placeholders import PersonalTokens

__all__ = [
    "DigestRenderer",
    "MessageTemplate",
    "OutgoingMessage",
    "PersonalTokens",
    "Recipient",
    "RenderedEmail",
    "digest_subject",
]
