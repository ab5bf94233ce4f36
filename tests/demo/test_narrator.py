"""`demo --serve`'s running story: readable lines in a terminal, JSON lines otherwise."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest
from rich.console import Console

from newsletter.demo.narrator import STORIES, Narrator
from newsletter.logs import get_logger

log = get_logger("tests.narrator")


@pytest.fixture
def logger() -> Iterator[logging.Logger]:
    target = logging.getLogger("tests.narrator")
    level, propagate = target.level, target.propagate
    target.setLevel(logging.INFO)
    target.propagate = False
    yield target
    target.handlers.clear()
    target.setLevel(level)
    target.propagate = propagate


def narrator(logger: logging.Logger, *, terminal: bool) -> io.StringIO:
    out = io.StringIO()
    console = Console(file=out, force_terminal=terminal, width=200, color_system=None)
    logger.addHandler(Narrator(console))
    return out


def test_a_terminal_gets_one_readable_line_per_event(logger: logging.Logger) -> None:
    out = narrator(logger, terminal=True)
    log.info("subscriber.signup", subscriber=7, status="pending", new=True)
    log.info(
        "capture.saved", recipient="ada@readers.example", subject="London Daily", path="var/outbox/1.eml"
    )
    log.info("edition.created", edition=2, newsletter="daily", date="2026-12-06", trigger="api")
    log.info("worker.claimed", rows=3)  # not part of the story
    lines = out.getvalue().splitlines()
    assert len(lines) == 3
    assert "signup" in lines[0] and "reader #7 signed up" in lines[0]
    assert "“London Daily” for ada@readers.example → var/outbox/1.eml" in lines[1]
    assert "edition #2 of 2026-12-06 built (api)" in lines[2]


def test_elsewhere_each_event_is_a_json_object(logger: logging.Logger) -> None:
    out = narrator(logger, terminal=False)
    log.info("delivery.progress", worker="w", sent=4, retried=0, failed=1, skipped=2)
    log.info("worker.claimed", rows=3)
    [line] = out.getvalue().splitlines()
    event = json.loads(line)
    assert event["event"] == "delivery.progress" and event["sent"] == 4 and event["failed"] == 1


def test_markup_in_fields_is_printed_as_text(logger: logging.Logger) -> None:
    out = narrator(logger, terminal=True)
    log.info("demo.story_published", title="[bold]Markets[/bold] rally")
    assert "[bold]Markets[/bold] rally" in out.getvalue()


def test_every_story_has_a_line_for_its_fields() -> None:
    fields = {"subscriber": 1, "status": "pending", "feed": "f", "new": 1, "updated": 0, "title": "t"}
    fields |= {"edition": 1, "date": "d", "trigger": "t", "reason": "r", "subject": "s", "recipient": "r"}
    fields |= {"path": "p", "sent": 1, "skipped": 0, "retried": 0, "failed": 0, "error": "e"}
    for event, (label, line) in STORIES.items():
        assert label and line(fields), event
