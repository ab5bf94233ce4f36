from __future__ import annotations

import json
import logging

import pytest

from newsletter.config import LoggingConfig
from newsletter.logs import configure_logging, get_logger


@pytest.fixture(autouse=True)
def restore_logging() -> object:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def test_one_json_object_per_event(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging(LoggingConfig.model_validate({"json": True}))
    get_logger("newsletter.test").info("edition.created", edition=7, newsletter="daily")
    line = capsys.readouterr().err.strip().splitlines()[-1]
    event = json.loads(line)
    assert event["event"] == "edition.created" and event["edition"] == 7 and event["level"] == "info"


def test_key_value_text_by_default(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging(LoggingConfig())
    get_logger("newsletter.test").warning("smtp.unavailable", server="mail:25", error="refused by peer")
    line = capsys.readouterr().err.strip().splitlines()[-1]
    assert "smtp.unavailable" in line and "server=mail:25" in line and 'error="refused by peer"' in line
