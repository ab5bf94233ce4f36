"""Tokens standing for a recipient's personal values in a digest rendered once for everyone."""

from __future__ import annotations

import html
import re
from collections.abc import Mapping
from typing import Any

from markupsafe import Markup

# ASCII letters and underscores only: nothing on the way (autoescaping, premailer, lxml,
# quoted-printable) rewrites them, and no feed content can carry one (see `scrub`).
TOKEN = re.compile(r"__NL_([a-z]+(?:_[a-z]+)*)__")

DIGEST_FIELDS = frozenset({"unsubscribe_url", "preferences_url", "email"})
CONFIRMATION_FIELDS = frozenset({"confirm_url", "email"})


class Placeholder(Markup):
    """A token rendered verbatim; the only string allowed to carry one."""


def placeholder(field: str) -> Placeholder:
    token = f"__NL_{field}__"
    if not TOKEN.fullmatch(token):
        raise ValueError(f"bad placeholder name: {field!r}")
    return Placeholder(token)


def placeholders(fields: frozenset[str]) -> dict[str, Placeholder]:
    return {field: placeholder(field) for field in sorted(fields)}


def scrub(value: Any) -> Any:
    """Jinja2's finalize hook: drop token look-alikes from anything but a real placeholder,
    so a hostile feed cannot make a reader's personal link appear where it chooses."""
    if isinstance(value, Placeholder) or not isinstance(value, str):
        return value
    if "__NL_" not in value:
        return value
    cleaned = TOKEN.sub("", value)
    return Markup(cleaned) if isinstance(value, Markup) else cleaned


def fields_in(*texts: str) -> set[str]:
    return {match.group(1) for text in texts for match in TOKEN.finditer(text)}


def fill_html(rendered_html: str, values: Mapping[str, str]) -> str:
    """The HTML with each token replaced by its escaped value (previews, screenshots)."""
    return TOKEN.sub(lambda m: html.escape(values[m.group(1)], quote=True), rendered_html)


def fill_text(rendered_text: str, values: Mapping[str, str]) -> str:
    return TOKEN.sub(lambda m: values[m.group(1)], rendered_text)
