"""Request bodies read strictly: URL-encoded forms in UTF-8, and JSON that cannot hide anything
(repeated keys, nesting deep enough to exhaust the parser)."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import unquote_plus

from newsletter.errors import InvalidInput


def decode_urlencoded(body: bytes) -> list[tuple[str, str]]:
    """A URL-encoded form body, strictly: UTF-8 only, so no other encoding slips through as mojibake."""
    try:
        text = body.decode("ascii")
    except UnicodeDecodeError:
        raise InvalidInput("body", "form data must be URL-encoded (raw non-ASCII bytes found)") from None
    pairs: list[tuple[str, str]] = []
    for pair in text.split("&"):
        if not pair:
            continue
        raw_name, _, raw_value = pair.partition("=")
        name = _unquote("body", raw_name)
        pairs.append((name, _unquote(name, raw_value)))
    return pairs


def _unquote(field: str, raw: str) -> str:
    try:
        return unquote_plus(raw, encoding="utf-8", errors="strict")
    except UnicodeDecodeError:
        raise InvalidInput(field, "is not valid UTF-8") from None


def decode_json(body: bytes) -> Any:
    """A JSON body in UTF-8; an object repeating a key is refused rather than silently merged."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidInput("body", "is not valid UTF-8") from None
    try:
        return json.loads(text, object_pairs_hook=_unique_keys)
    except json.JSONDecodeError as exc:
        raise InvalidInput(
            "body", f"is not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})"
        ) from None
    except RecursionError:
        raise InvalidInput("body", "is nested too deeply") from None


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    data: dict[str, Any] = {}
    for key, value in pairs:
        if key in data:
            raise InvalidInput(key, "given more than once")
        data[key] = value
    return data
