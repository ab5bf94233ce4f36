"""How big a digest's HTML is, against what mail clients show whole: Gmail clips a message whose
HTML passes about 102 KB, hiding what follows (the unsubscribe footer included)."""

from __future__ import annotations

# Gmail's limit, and where we start to warn (a reader's own values add a little to each copy).
CLIP_BYTES = 102 * 1024
WARN_BYTES = 90 * 1024


def html_bytes(html: str) -> int:
    return len(html.encode("utf-8"))


def clipping_warning(size: int, *, what: str = "the digest") -> str | None:
    """A one-line warning when `size` bytes of HTML come near Gmail's clipping point, else None."""
    if size <= WARN_BYTES:
        return None
    state = "is over" if size > CLIP_BYTES else "is close to"
    return (
        f"{what}'s HTML is {size / 1024:.0f} KB, which {state} the 102 KB Gmail shows whole: readers "
        "would see it clipped, its unsubscribe footer hidden; lower max_articles or trim the templates"
    )
