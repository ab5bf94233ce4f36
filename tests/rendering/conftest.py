"""Settings for pure rendering tests: no database or SMTP server is opened."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from newsletter.config import NewsletterConfig, Settings, load_settings
from newsletter.rendering import DigestRenderer, RenderedEmail
from tests.rendering.articles import EDITION_DATE, stories

SECRET = "rendering-secret-key-0123456789"
UNSUBSCRIBE_URL = "https://londondaily.example/unsubscribe/MTIzLmRhaWx5.sig-_x"
PREFERENCES_URL = "https://londondaily.example/preferences/MTIz.sig-_y"
READER = "reader@example.com"
DIGEST_VALUES = {"unsubscribe_url": UNSUBSCRIBE_URL, "preferences_url": PREFERENCES_URL, "email": READER}

RenderSettings = Callable[..., Settings]


@pytest.fixture
def render_settings(tmp_path: Path) -> RenderSettings:
    """Settings as an operator would write them; keyword sections override or extend."""

    def build(**sections: Any) -> Settings:
        empty = tmp_path / "empty.toml"
        empty.touch()
        overrides: dict[str, Any] = {
            "site": {"base_url": "https://londondaily.example", "postal_address": "1 Example Street, London"},
            "database": {"url": f"sqlite:///{tmp_path / 'unused.db'}"},
            "security": {"secret_key": SECRET, "admin_token": "rendering-admin-token-9876543210"},
            "newsletters": [{"id": "daily", "name": "The Daily Briefing"}],
        }
        for section, values in sections.items():
            if isinstance(values, dict) and isinstance(overrides.get(section), dict):
                overrides[section] = {**overrides[section], **values}
            else:
                overrides[section] = values
        return load_settings(empty, overrides=overrides)

    return build


@pytest.fixture
def settings_plain(render_settings: RenderSettings) -> Settings:
    return render_settings()


@pytest.fixture
def daily(settings_plain: Settings) -> NewsletterConfig:
    return settings_plain.newsletter("daily")


@pytest.fixture
def renderer(settings_plain: Settings) -> DigestRenderer:
    return DigestRenderer(settings_plain)


@pytest.fixture
def rendered(renderer: DigestRenderer, daily: NewsletterConfig) -> RenderedEmail:
    return renderer.render_digest(daily, EDITION_DATE, stories())
