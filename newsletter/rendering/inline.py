"""CSS inlining with premailer, once per edition variant."""

from __future__ import annotations

import logging

# SMTP's limit is 998 octets; quoted-printable keeps the sent lines short anyway, this keeps
# the stored and previewed HTML within it too.
MAX_LINE = 900


def inline_css(document: str) -> str:
    """Styles from <style> onto each element; @media rules (narrow screens, dark mode) stay in
    <head> with their !important, since that is what lets them beat the inline styles."""
    # Imported here: ~0.15 s (premailer, cssutils, requests) that a process sending editions
    # already rendered, as workers mostly do, never needs.
    from premailer import Premailer

    premailer = Premailer(
        document,
        allow_network=False,
        allow_loading_external_files=False,
        strip_important=False,
        keep_style_tags=False,
        remove_classes=False,
        disable_validation=True,
        # Outlook sizes images and tables by their width attributes: keep the templates' pixels.
        disable_basic_attributes=["width", "height"],
        cssutils_logging_level=logging.CRITICAL,
    )
    inlined: str = premailer.transform(pretty_print=False)
    if document.lstrip().lower().startswith("<!doctype") and not inlined.lower().startswith("<!doctype"):
        inlined = "<!DOCTYPE html>\n" + inlined
    return wrap_long_lines(inlined)


def wrap_long_lines(document: str, limit: int = MAX_LINE) -> str:
    """Break lines over `limit` characters at a space between tags or attributes."""
    lines = document.split("\n")
    if all(len(line) <= limit for line in lines):
        return document
    return "\n".join(piece for line in lines for piece in _split(line, limit))


def _split(line: str, limit: int) -> list[str]:
    pieces: list[str] = []
    while len(line) > limit:
        cut = _break_point(line, limit)
        if cut <= 0:
            break
        pieces.append(line[:cut])
        line = line[cut + 1 :]
    pieces.append(line)
    return pieces


def _break_point(line: str, limit: int) -> int:
    # A space inside a tag (between attributes) or in text is a safe place for a newline; one
    # inside a <pre> would not be, and our templates have none.
    for candidate in (line.rfind(" ", 0, limit), line.find(" ", limit)):
        if candidate > 0:
            return candidate
    return -1
