"""One article as pushed by a feed, the API or the CLI: validated, then tidied by the same rules."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from newsletter.articles.clean import (
    MAX_URL_CHARS,
    absolute_url,
    one_line,
    sanitise_summary,
    truncate_text,
)
from newsletter.config import Settings
from newsletter.errors import InvalidInput
from newsletter.moments import UtcMoment

# Column sizes of the articles table that tidy() keeps within.
TITLE_COLUMN = 500
AUTHOR_COLUMN = 300
SECTION_CHARS = 60
MAX_ITEMS_PER_REQUEST = 500


def _http_url(value: str) -> str:
    url = absolute_url(value)
    if url is None:
        raise ValueError("must be an absolute http(s) URL")
    return url


def _text(value: str) -> str:
    text = one_line(value)
    if not text:
        raise ValueError("must not be empty")
    return text


def _blank_is_none(value: Any) -> Any:
    return None if isinstance(value, str) and not value.strip() else value


HttpUrl = Annotated[str, Field(max_length=MAX_URL_CHARS), AfterValidator(_http_url)]
Title = Annotated[str, Field(max_length=2000), AfterValidator(_text)]
Author = Annotated[str, Field(max_length=AUTHOR_COLUMN), AfterValidator(_text)]
SectionText = Annotated[str, Field(max_length=100), AfterValidator(_text)]
Guid = Annotated[str, Field(max_length=1000), AfterValidator(_text)]
BlankIsNone = BeforeValidator(_blank_is_none)


class ArticleInput(BaseModel):
    """An article: its title and absolute http(s) URL are required. The summary may hold simple
    HTML, which is sanitised; long titles and summaries are shortened, and a section named in
    any case matches the site's own."""

    # The API's schema shows the docstring above; in code, build one through validate_articles
    # or tidy, which make it safe.

    model_config = ConfigDict(extra="forbid", frozen=True)

    title: Title
    url: HttpUrl
    summary: Annotated[str, Field(max_length=100_000)] = ""
    author: Annotated[Author | None, BlankIsNone] = None
    section: Annotated[SectionText | None, BlankIsNone] = None
    image_url: Annotated[HttpUrl | None, BlankIsNone] = None
    # None: unknown; a new article then takes the time of ingestion, an update keeps its date.
    published_at: Annotated[UtcMoment | None, BlankIsNone] = None
    guid: Annotated[Guid | None, BlankIsNone] = None
    feed_url: Annotated[str | None, Field(max_length=MAX_URL_CHARS)] = None


@dataclass(frozen=True)
class ArticleRules:
    """What tidy() applies (the sections readers know, the length limits), and how many entries
    of one feed are kept."""

    known_sections: tuple[str, ...] = ()
    max_title_chars: int = 200
    max_summary_chars: int = 600
    # Entries kept from one fetch of one feed, the newest.
    max_entries: int = 500

    @classmethod
    def from_settings(cls, settings: Settings) -> ArticleRules:
        return cls(
            known_sections=tuple(settings.known_sections()),
            max_title_chars=min(settings.ingest.max_title_chars, TITLE_COLUMN),
            max_summary_chars=settings.ingest.max_summary_chars,
            max_entries=settings.articles.max_entries_per_feed,
        )


def tidy(item: ArticleInput, rules: ArticleRules) -> ArticleInput:
    """Sanitised summary, titles cut to length, the section matched to a known one. Idempotent."""
    return item.model_copy(
        update={
            "title": truncate_text(item.title, rules.max_title_chars),
            "summary": sanitise_summary(item.summary, base_url=item.url, max_chars=rules.max_summary_chars),
            "section": section_name(item.section, rules.known_sections),
            "author": truncate_text(item.author, AUTHOR_COLUMN) if item.author else None,
        }
    )


def section_name(given: str | None, known: Sequence[str]) -> str | None:
    """A known section when `given` names one in any case ("world" → "World"), else `given` trimmed."""
    if not given:
        return None
    text = one_line(given)
    for name in known:
        if name.casefold() == text.casefold():
            return name
    return truncate_text(text, SECTION_CHARS) or None


def validate_articles(body: object, rules: ArticleRules) -> list[ArticleInput]:
    """One article object or a list of them, validated and tidied; InvalidInput names the field
    as `url` for one object and `items[3].url` within a list."""
    if isinstance(body, dict):
        return [tidy(_validated(body, ""), rules)]
    if not isinstance(body, list):
        raise InvalidInput("body", "expected an article object or a list of them")
    if not body:
        raise InvalidInput("items", "the list is empty")
    if len(body) > MAX_ITEMS_PER_REQUEST:
        raise InvalidInput("items", f"at most {MAX_ITEMS_PER_REQUEST} articles per request")
    items: list[ArticleInput] = []
    for index, raw in enumerate(body):
        if not isinstance(raw, dict):
            raise InvalidInput(f"items[{index}]", "expected an article object")
        items.append(tidy(_validated(raw, f"items[{index}]"), rules))
    return items


def _validated(raw: dict[str, Any], prefix: str) -> ArticleInput:
    try:
        return ArticleInput.model_validate(raw)
    except ValidationError as exc:
        error = exc.errors()[0]
        field = _field_name(prefix, error.get("loc", ()))
        message = str(error.get("msg", "invalid")).removeprefix("Value error, ")
        if error.get("type") == "extra_forbidden":
            message = "unknown field"
        raise InvalidInput(field, message) from None


def _field_name(prefix: str, location: Sequence[int | str]) -> str:
    name = prefix
    for part in location:
        if isinstance(part, int):
            name += f"[{part}]"
        elif not part.startswith(("function-", "nullable[", "str", "datetime")):
            name += f".{part}" if name else part
    return name or "body"
