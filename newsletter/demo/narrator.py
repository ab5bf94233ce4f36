"""What `demo --serve` prints while it runs: one line per signup, confirmation, new story,
edition, stretch of sending and captured message. Readable (rich) in a terminal, one JSON object
a line when the output is not a terminal."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from rich.console import Console
from rich.markup import escape

from newsletter.logs import FIELDS, JsonFormatter

Fields = Mapping[str, Any]


def _signup(f: Fields) -> str:
    if f.get("status") == "pending":
        return f"reader #{f.get('subscriber')} signed up; their confirmation email is on its way"
    return f"a signup for reader #{f.get('subscriber')} ({f.get('status')}): nothing to confirm"


def _ingested(f: Fields) -> str:
    return f"fetched {f.get('feed')}: {f.get('new')} new, {f.get('updated')} updated"


def _progress(f: Fields) -> str:
    counts = ", ".join(f"{f.get(key)} {key}" for key in ("sent", "skipped", "retried", "failed"))
    return f"this worker so far: {counts}"


def _edition(f: Fields) -> str:
    return f"edition #{f.get('edition')} of {f.get('date')} built ({f.get('trigger')})"


def _captured(f: Fields) -> str:
    return f"“{f.get('subject')}” for {f.get('recipient')} → {f.get('path')}"


# Event name -> (label, line); events not listed here are not narrated.
STORIES: dict[str, tuple[str, Callable[[Fields], str]]] = {
    "subscriber.signup": ("signup", _signup),
    "subscriber.confirmed": ("confirmed", lambda f: f"reader #{f.get('subscriber')} is subscribed"),
    "subscriber.preferences": ("preferences", lambda f: f"reader #{f.get('subscriber')} made new choices"),
    "subscriber.unsubscribed": ("unsubscribed", lambda f: f"reader #{f.get('subscriber')} unsubscribed"),
    "demo.story_published": ("published", lambda f: f"London Daily published “{f.get('title')}”"),
    "demo.stories_exhausted": ("published", lambda f: "no more sample stories; restart the demo for more"),
    "feed.ingested": ("feed", _ingested),
    "feed.failed": ("feed", lambda f: f"{f.get('feed')} failed: {f.get('error')}"),
    "edition.created": ("edition", _edition),
    "delivery.progress": ("sending", _progress),
    "edition.done": ("edition", lambda f: f"edition #{f.get('edition')} delivered"),
    "edition.paused": ("edition", lambda f: f"edition #{f.get('edition')} paused: {f.get('reason')}"),
    "capture.saved": ("captured", _captured),
}


class Narrator(logging.Handler):
    """A logging handler that tells the demo's story; everything else is left to the others."""

    def __init__(self, console: Console) -> None:
        super().__init__(logging.INFO)
        self.console = console
        self.json = JsonFormatter()

    def emit(self, record: logging.LogRecord) -> None:
        story = STORIES.get(record.getMessage())
        if story is None:
            return
        try:
            if self.console.is_terminal:
                self._print(record, *story)
            else:
                self.console.file.write(self.json.format(record) + "\n")
                self.console.file.flush()
        except Exception:
            self.handleError(record)

    def _print(self, record: logging.LogRecord, label: str, line: Callable[[Fields], str]) -> None:
        fields: Fields = getattr(record, FIELDS, {})
        stamp = datetime.fromtimestamp(record.created).strftime("%H:%M:%S")
        style = "yellow" if record.levelno >= logging.WARNING else "cyan"
        self.console.print(
            f"[dim]{stamp}[/] [{style}]{label:>12}[/] {escape(line(fields))}", highlight=False, soft_wrap=True
        )


def narrate(console: Console) -> Narrator:
    """Attach a narrator to the root logger; other handlers keep only warnings and errors."""
    root = logging.getLogger()
    for handler in root.handlers:
        handler.setLevel(max(handler.level, logging.WARNING))
    narrator = Narrator(console)
    root.addHandler(narrator)
    root.setLevel(logging.INFO)
    return narrator
