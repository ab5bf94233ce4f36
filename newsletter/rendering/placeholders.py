"""Tokens standing for a recipient's personal values in a digest rendered once for everyone.

Each rendering draws a random nonce, and its tokens spell `__NL_<nonce>_<field>__`. Articles
are stored long before the nonce exists, so no feed or API content can contain a real token,
however it is nested or encoded: a look-alike stays inert text. (Filtering look-alikes out of
content, as an earlier version did, can be beaten by nesting one inside another.)
"""

from __future__ import annotations

import html
import re
import secrets
import string
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cached_property

# reader_tag: the delivery's signed tag, in per-reader click links and the open pixel.
DIGEST_FIELDS = frozenset({"unsubscribe_url", "preferences_url", "email", "reader_tag"})
CONFIRMATION_FIELDS = frozenset({"confirm_url", "email"})

# ASCII letters and underscores only: nothing on the way (autoescaping, premailer, lxml,
# quoted-printable) rewrites them. 20 letters: about 94 bits, never guessed.
NONCE_LETTERS = 20
_FIELD = r"([a-z]+(?:_[a-z]+)*)"


@dataclass(frozen=True)
class PersonalTokens:
    """The tokens of one rendering. `nonce == ""` reads variants stored before nonces existed
    (their tokens were `__NL_<field>__`); nothing new is ever rendered that way."""

    nonce: str

    @classmethod
    def fresh(cls) -> PersonalTokens:
        return cls("".join(secrets.choice(string.ascii_lowercase) for _ in range(NONCE_LETTERS)))

    @classmethod
    def stored(cls, nonce: str | None) -> PersonalTokens:
        return cls(nonce or "")

    def __post_init__(self) -> None:
        if self.nonce and not re.fullmatch(f"[a-z]{{{NONCE_LETTERS}}}", self.nonce):
            raise ValueError(f"bad token nonce: {self.nonce!r}")

    @cached_property
    def _prefix(self) -> str:
        return f"__NL_{self.nonce}_" if self.nonce else "__NL_"

    @cached_property
    def pattern(self) -> re.Pattern[str]:
        return re.compile(re.escape(self._prefix) + _FIELD + "__")

    def token(self, field: str) -> str:
        token = f"{self._prefix}{field}__"
        if not self.pattern.fullmatch(token):
            raise ValueError(f"bad placeholder name: {field!r}")
        return token

    def placeholders(self, fields: Iterable[str]) -> dict[str, str]:
        """What a template sees for each personal field: its token."""
        return {field: self.token(field) for field in sorted(fields)}

    def fields_in(self, *texts: str) -> set[str]:
        return {match.group(1) for text in texts for match in self.pattern.finditer(text)}

    def split(self, text: str) -> list[str]:
        """text, field, text, field, …, text."""
        return self.pattern.split(text)

    def fill_html(self, rendered_html: str, values: Mapping[str, str]) -> str:
        """The HTML with each token replaced by its escaped value (previews, screenshots)."""
        return self.pattern.sub(lambda m: html.escape(values[m.group(1)], quote=True), rendered_html)

    def fill_text(self, rendered_text: str, values: Mapping[str, str]) -> str:
        return self.pattern.sub(lambda m: values[m.group(1)], rendered_text)
