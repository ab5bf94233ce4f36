"""The `scenario` of these tests: editions sent on settings with a chosen [tracking] section."""

from __future__ import annotations

from typing import Any

import pytest

from newsletter.config import Settings
from tests.conftest import SettingsFactory
from tests.engagement.helpers import BASE_URL, TrackedScenario
from tests.support.editions import Scenario, scenario_factory


@pytest.fixture
def scenario(make_settings: SettingsFactory) -> TrackedScenario:
    """`scenario(tracking)`: editions sent on settings with that [tracking] section."""

    def with_tracking(tracking: dict[str, int]) -> Scenario:
        def settings(**sections: Any) -> Settings:
            return make_settings(site={"base_url": BASE_URL}, tracking=tracking, **sections)

        return scenario_factory(settings)

    return with_tracking
