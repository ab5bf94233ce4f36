"""Article links in emails: absolute http(s) only, with the newsletter's UTM parameters."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from newsletter.config import NewsletterConfig


def web_url(url: str | None) -> str:
    """The URL when it is absolute http(s), else "" (javascript:, data:, relative, garbage)."""
    if not url:
        return ""
    candidate = url.strip()
    try:
        parts = urlsplit(candidate)
    except ValueError:
        return ""
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        return ""
    if any(ch.isspace() or ord(ch) < 0x20 for ch in candidate):
        return ""
    return candidate


def utm_parameters(newsletter: NewsletterConfig) -> list[tuple[str, str]]:
    pairs = [
        ("utm_source", newsletter.utm_source),
        ("utm_medium", newsletter.utm_medium),
        ("utm_campaign", newsletter.utm_campaign),
    ]
    return [(key, value) for key, value in pairs if value]


def with_utm(url: str, parameters: list[tuple[str, str]]) -> str:
    """Append UTM parameters the URL does not already carry, keeping its own query and fragment."""
    if not parameters or not url:
        return url
    parts = urlsplit(url)
    present = {key for key, _ in parse_qsl(parts.query, keep_blank_values=True)}
    missing = [(key, value) for key, value in parameters if key not in present]
    if not missing:
        return url
    extra = urlencode(missing)
    query = f"{parts.query}&{extra}" if parts.query else extra
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, parts.fragment))
