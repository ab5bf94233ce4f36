"""How a reader's choice of sections is stored in `subscriptions.sections`: a sorted JSON list,
"[]" for every section. Subscriptions write it, editions group readers by it."""

from __future__ import annotations

import json
from collections.abc import Sequence


def canonical_sections(sections: Sequence[str]) -> str:
    """The stored form of a choice of sections."""
    return json.dumps(sorted(set(sections)), ensure_ascii=False)


def parse_sections(stored: str | None) -> list[str]:
    if not stored:
        return []
    value = json.loads(stored)
    return [str(s) for s in value] if isinstance(value, list) else []
