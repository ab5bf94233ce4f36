"""The pages' colours meet WCAG AA contrast (4.5:1 for text), read from the shipped stylesheet."""

from __future__ import annotations

import re

import pytest

from newsletter.resources import template_dirs

BASE = (template_dirs("web", None)[0] / "base.html").read_text(encoding="utf-8")


def luminance(hex_colour: str) -> float:
    channels = [int(hex_colour[i : i + 2], 16) / 255 for i in (1, 3, 5)]
    linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def contrast(a: str, b: str) -> float:
    lighter, darker = sorted((luminance(a), luminance(b)), reverse=True)
    return (lighter + 0.05) / (darker + 0.05)


def rule(selector: str) -> str:
    match = re.search(r"^\s*" + re.escape(selector) + r"\s*\{([^}]*)\}", BASE, re.MULTILINE)
    assert match is not None, selector
    return match.group(1)


def colour(selector: str, prop: str = "color") -> str:
    match = re.search(rf"(?<![-\w]){prop}:\s*(#[0-9a-fA-F]{{6}})", rule(selector))
    assert match is not None, (selector, prop)
    return match.group(1)


PAGE = colour("body", "background")
CARD = colour(".card", "background")


@pytest.mark.parametrize(
    ("foreground", "background"),
    [
        (colour("body"), CARD),
        (colour(".tagline"), PAGE),
        (colour(".hint"), CARD),
        (colour("a"), CARD),
        (colour("footer"), PAGE),
        (colour("button, .button"), colour("button, .button", "background")),
        (colour("button.secondary"), colour("button.secondary", "background")),
        ("#ffffff", colour("button:hover, .button:hover", "background")),
        (colour("body"), colour(".error", "background")),
    ],
)
def test_text_contrast_is_at_least_4_5(foreground: str, background: str) -> None:
    assert contrast(foreground, background) >= 4.5, (foreground, background)


def test_focus_is_visible_and_distinct() -> None:
    outline = re.search(r"outline:\s*3px solid (#[0-9a-fA-F]{6})", rule(":focus-visible"))
    assert outline is not None
    assert contrast(outline.group(1), CARD) >= 3
