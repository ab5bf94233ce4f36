"""Digest rendering: templates rendered and inlined once per variant, personalised per recipient.

The names below load on first use (PEP 562): importing one submodule (`rendering.dkim`, as
most commands do to check the key) must not bring Jinja2 and premailer along."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from newsletter.rendering.digest import DigestRenderer, RenderedEmail, digest_subject
    from newsletter.rendering.message import MessageTemplate, OutgoingMessage, Recipient
    from newsletter.rendering.placeholders import PersonalTokens

_WHERE = {
    "DigestRenderer": "digest",
    "RenderedEmail": "digest",
    "digest_subject": "digest",
    "MessageTemplate": "message",
    "OutgoingMessage": "message",
    "Recipient": "message",
    "PersonalTokens": "placeholders",
}

__all__ = [
    "DigestRenderer",
    "MessageTemplate",
    "OutgoingMessage",
    "PersonalTokens",
    "Recipient",
    "RenderedEmail",
    "digest_subject",
]


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_WHERE[name]}"), name)
