"""What readers and admins send, checked field by field: InvalidInput names the first bad one."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from newsletter.config import Settings
from newsletter.errors import InvalidInput
from newsletter.states import SubscriberStatus
from newsletter.subscriptions.addresses import Address, clean_text, normalise_address
from newsletter.subscriptions.choices import (
    Choices,
    check_timezone,
    resolve_choices,
    resolve_per_newsletter,
    string_list,
)
from newsletter.subscriptions.signup import SignupRequest

HONEYPOT = "website"
SIGNUP_FIELDS = ("email", "newsletters", "sections", "timezone", HONEYPOT)
LIST_FIELDS = ("newsletters", "sections")
ENTRY_FIELDS = ("email", "newsletters", "sections", "timezone", "confirmed")
# Statuses an import may set; anything else is refused.
IMPORTABLE = (SubscriberStatus.PENDING, SubscriberStatus.ACTIVE, SubscriberStatus.UNSUBSCRIBED)


@dataclass(frozen=True)
class NewSubscriber:
    """A subscriber an admin or an import adds (or updates)."""

    address: Address
    choices: Choices | None = None  # None: keep an existing subscriber's, else the default
    timezone: str | None = None
    confirmed: bool = False
    unsubscribed: bool = False  # an import carrying a reader's earlier "no"


def form_fields(items: Iterable[tuple[str, str]]) -> dict[str, object]:
    """A form's fields as one value each, or a list for the multiple-choice fields."""
    data: dict[str, object] = {}
    for name, value in items:
        if name in LIST_FIELDS:
            listed = data.setdefault(name, [])
            assert isinstance(listed, list)
            listed.append(value)
        elif name in data:
            raise InvalidInput(name, "given more than once")
        else:
            data[name] = value
    return data


def honeypot_filled(data: Mapping[str, object]) -> bool:
    """True when the field real readers never see (a bot's favourite) holds anything."""
    value = data.get(HONEYPOT)
    if value is None:
        return False
    return not isinstance(value, str) or bool(value.strip())


def _reject_unknown(data: Mapping[str, object], allowed: Iterable[str], prefix: str = "") -> None:
    for name in data:
        if name not in allowed:
            shown = clean_text("body", name, max_chars=100) if isinstance(name, str) else "?"
            raise InvalidInput(f"{prefix}{shown}", "unknown field")


async def parse_signup(settings: Settings, data: Mapping[str, object]) -> SignupRequest:
    """A reader's signup; the address is looked up in DNS only when so configured."""
    _reject_unknown(data, SIGNUP_FIELDS)
    address = normalise_address(data.get("email"), local_domains=_local(settings))
    choices = resolve_choices(
        settings,
        string_list("newsletters", data.get("newsletters")),
        string_list("sections", data.get("sections")),
    )
    timezone = _browser_timezone(data.get("timezone"))
    if settings.subscriptions.check_deliverability:
        address = await asyncio.to_thread(
            normalise_address, address.email, check_deliverability=True, local_domains=_local(settings)
        )
    return SignupRequest(address, choices, timezone)


def _browser_timezone(value: object) -> str | None:
    # Filled in by the signup page's script from the browser: a zone this server does not
    # know is dropped rather than refusing a signup the reader cannot fix.
    try:
        return check_timezone("timezone", value)
    except InvalidInput as exc:
        if exc.message.startswith("unknown timezone"):
            return None
        raise


def parse_entry(settings: Settings, data: object, prefix: str = "") -> NewSubscriber:
    """One admin API item: {email, newsletters?, sections?, timezone?, confirmed?}."""
    if not isinstance(data, Mapping):
        raise InvalidInput(prefix.rstrip(".") or "body", "must be an object")
    _reject_unknown(data, ENTRY_FIELDS, prefix)
    address = normalise_address(data.get("email"), field=f"{prefix}email", local_domains=_local(settings))
    confirmed = data.get("confirmed", False)
    if not isinstance(confirmed, bool):
        raise InvalidInput(f"{prefix}confirmed", "must be true or false")
    return NewSubscriber(
        address=address,
        choices=entry_choices(settings, data.get("newsletters"), data.get("sections"), prefix),
        timezone=check_timezone(f"{prefix}timezone", data.get("timezone")),
        confirmed=confirmed,
    )


def entry_choices(
    settings: Settings, newsletters: object, sections: object, prefix: str = ""
) -> Choices | None:
    """None when neither is given (an existing subscriber keeps its choices)."""
    if newsletters in (None, "", []) and sections in (None, "", []):
        return None
    return resolve_choices(
        settings,
        string_list(f"{prefix}newsletters", newsletters),
        string_list(f"{prefix}sections", sections),
        newsletters_field=f"{prefix}newsletters",
        sections_field=f"{prefix}sections",
    )


@dataclass(frozen=True)
class PreferencesForm:
    unsubscribe_all: bool
    choices: Choices
    timezone: str | None


def parse_preferences(settings: Settings, pairs: Iterable[tuple[str, str]]) -> PreferencesForm:
    """The preferences page's form: newsletters, `sections:<newsletter>`, timezone, action."""
    newsletters: list[str] = []
    sections: dict[str, list[str]] = {}
    single: dict[str, str] = {}
    for name, value in pairs:
        text = clean_text(name if name.isprintable() else "body", value, max_chars=100).strip()
        if name == "newsletters":
            newsletters.append(text)
        elif name.startswith("sections:"):
            sections.setdefault(name.removeprefix("sections:"), []).append(text)
        elif name in ("timezone", "action") and name not in single:
            single[name] = text
        else:
            raise InvalidInput(name if name.isprintable() else "body", "unknown or repeated field")
    action = single.get("action", "save")
    if action not in ("save", "unsubscribe"):
        raise InvalidInput("action", "must be save or unsubscribe")
    if action == "unsubscribe":
        return PreferencesForm(True, {}, None)
    return PreferencesForm(
        unsubscribe_all=False,
        choices=resolve_per_newsletter(settings, newsletters, sections),
        timezone=check_timezone("timezone", single.get("timezone")),
    )


def _local(settings: Settings) -> bool:
    return settings.subscriptions.allow_local_domains
