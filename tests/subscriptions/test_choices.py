"""Newsletter and section choices against the configuration."""

from __future__ import annotations

import pytest

from newsletter.config import Settings
from newsletter.errors import InvalidInput
from newsletter.subscriptions.choices import resolve_choices, resolve_per_newsletter
from tests.conftest import SettingsFactory
from tests.web.test_pages_signup import TWO_NEWSLETTERS


@pytest.fixture
def two(make_settings: SettingsFactory) -> Settings:
    return make_settings(
        newsletters=TWO_NEWSLETTERS, site={"sections": ["World", "Politics", "Business", "Sport"]}
    )


def test_no_newsletter_means_the_first(two: Settings) -> None:
    assert resolve_choices(two, [], []) == {"daily": []}


def test_sections_apply_to_each_newsletter_offering_them(two: Settings) -> None:
    assert resolve_choices(two, ["daily", "weekly"], ["World", "Sport"]) == {
        "daily": ["World"],
        "weekly": ["Sport", "World"],
    }


def test_every_section_chosen_is_stored_as_all(two: Settings) -> None:
    assert resolve_choices(two, ["daily"], ["World", "Politics", "Business"]) == {"daily": []}


def test_scoped_sections_apply_to_one_newsletter(two: Settings) -> None:
    assert resolve_choices(two, ["daily", "weekly"], ["daily:World", "weekly:Sport"]) == {
        "daily": ["World"],
        "weekly": ["Sport"],
    }


@pytest.mark.parametrize(
    ("newsletters", "sections", "field"),
    [
        (["monthly"], [], "newsletters[0]"),
        (["daily"], ["Sport"], "sections[0]"),
        ([], ["x", "World"], "sections[0]"),
    ],
)
def test_unknown_choices_name_the_field(
    two: Settings, newsletters: list[str], sections: list[str], field: str
) -> None:
    with pytest.raises(InvalidInput) as caught:
        resolve_choices(two, newsletters, sections)
    assert caught.value.field == field


def test_preferences_choose_sections_per_newsletter(two: Settings) -> None:
    assert resolve_per_newsletter(two, ["daily"], {"daily": ["Politics"], "weekly": ["Sport"]}) == {
        "daily": ["Politics"]
    }
    with pytest.raises(InvalidInput) as caught:
        resolve_per_newsletter(two, ["daily"], {"monthly": ["World"]})
    assert caught.value.field == "sections:monthly"
