"""A reader's choice of newsletters and sections, checked against the configuration."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from newsletter.config import Settings
from newsletter.database.sections import parse_sections
from newsletter.errors import InvalidInput
from newsletter.subscriptions.addresses import clean_text

# newsletter id → chosen sections; [] means every section of that newsletter.
Choices = dict[str, list[str]]

MAX_CHOICES = 200
# Offered by the preferences page's timezone field (any IANA zone is accepted).
# fmt: off
COMMON_ZONES = (
    "Europe/London", "Europe/Dublin", "Europe/Lisbon", "Europe/Paris", "Europe/Berlin", "Europe/Madrid",
    "Europe/Rome", "Europe/Amsterdam", "Europe/Stockholm", "Europe/Warsaw", "Europe/Athens",
    "Europe/Istanbul", "Europe/Moscow", "Africa/Lagos", "Africa/Johannesburg", "Africa/Nairobi",
    "Asia/Dubai", "Asia/Karachi", "Asia/Kolkata", "Asia/Singapore", "Asia/Hong_Kong", "Asia/Shanghai",
    "Asia/Tokyo", "Asia/Seoul", "Australia/Perth", "Australia/Sydney", "Pacific/Auckland",
    "America/Sao_Paulo", "America/New_York", "America/Toronto", "America/Chicago", "America/Denver",
    "America/Los_Angeles", "America/Mexico_City", "Pacific/Honolulu", "UTC",
)
# fmt: on


def string_list(field: str, value: object) -> list[str]:
    """A list of short single-line strings (a lone string counts as a list of one)."""
    if value is None:
        return []
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list | tuple):
        raise InvalidInput(field, "must be a list of strings")
    if len(items) > MAX_CHOICES:
        raise InvalidInput(field, f"at most {MAX_CHOICES} entries")
    return [clean_text(f"{field}[{i}]", item, max_chars=100).strip() for i, item in enumerate(items)]


def default_newsletters(settings: Settings) -> list[str]:
    """Whom a signup naming no newsletter gets: the first configured newsletter."""
    return [settings.newsletters[0].id]


def resolve_choices(
    settings: Settings,
    newsletters: Sequence[str],
    sections: Sequence[str],
    *,
    newsletters_field: str = "newsletters",
    sections_field: str = "sections",
) -> Choices:
    """Newsletters (none: the first one) and a flat list of sections applied to each.

    A section applies to the chosen newsletters that offer it; a newsletter offering none
    of the chosen sections is received whole. `newsletter:Section` scopes a section to one
    newsletter (what `subscribers export` writes when choices differ between newsletters).
    """
    known = {n.id for n in settings.newsletters}
    chosen: list[str] = []
    for index, newsletter_id in enumerate(newsletters):
        if newsletter_id not in known:
            raise InvalidInput(f"{newsletters_field}[{index}]", f"unknown newsletter {newsletter_id!r}")
        if newsletter_id not in chosen:
            chosen.append(newsletter_id)
    chosen = chosen or default_newsletters(settings)
    offered = {n: settings.sections_of(settings.newsletter(n)) for n in chosen}
    wanted: dict[str, set[str]] = {n: set() for n in chosen}
    for index, section in enumerate(sections):
        scope, _, name = section.partition(":")
        targets = [scope] if name and scope in chosen else chosen
        name = name if name and scope in chosen else section
        matched = [n for n in targets if name in offered[n]]
        if not matched:
            raise InvalidInput(f"{sections_field}[{index}]", f"unknown section {section!r}")
        for newsletter_id in matched:
            wanted[newsletter_id].add(name)
    return {n: _stored_form(wanted[n], offered[n]) for n in chosen}


def resolve_per_newsletter(
    settings: Settings, newsletters: Sequence[str], sections: Mapping[str, Sequence[str]]
) -> Choices:
    """The preferences form: ticked newsletters, each with its own ticked sections."""
    known = {n.id for n in settings.newsletters}
    choices: Choices = {}
    for index, newsletter_id in enumerate(newsletters):
        if newsletter_id not in known:
            raise InvalidInput(f"newsletters[{index}]", f"unknown newsletter {newsletter_id!r}")
        offered = settings.sections_of(settings.newsletter(newsletter_id))
        chosen = list(sections.get(newsletter_id, ()))
        for position, section in enumerate(chosen):
            if section not in offered:
                raise InvalidInput(f"sections:{newsletter_id}[{position}]", f"unknown section {section!r}")
        choices[newsletter_id] = _stored_form(set(chosen), offered)
    for newsletter_id in sections:
        if newsletter_id not in known:
            raise InvalidInput(f"sections:{newsletter_id}", f"unknown newsletter {newsletter_id!r}")
    return choices


def _stored_form(wanted: set[str], offered: list[str]) -> list[str]:
    # Every section chosen is stored as "all", so sections added later are included too.
    return [] if not wanted or wanted >= set(offered) else sorted(wanted)


def choices_from_rows(rows: Mapping[str, str]) -> Choices:
    """newsletter id → stored sections JSON, as read from the subscriptions table."""
    return {newsletter_id: parse_sections(stored) for newsletter_id, stored in sorted(rows.items())}


def check_timezone(field: str, value: object) -> str | None:
    """An IANA zone name, or None for an empty value."""
    if value is None:
        return None
    text = clean_text(field, value, max_chars=64).strip()
    if not text:
        return None
    try:
        ZoneInfo(text)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidInput(field, f"unknown timezone {text!r}") from None
    return text
