"""Structured logs: one line per event with fields, as key=value text or JSON."""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any

from newsletter.config import LoggingConfig

FIELDS = "event_fields"


class EventLogger(logging.LoggerAdapter[logging.Logger]):
    """`log.info("edition.created", edition=3, newsletter="daily")`"""

    def process(self, msg: Any, kwargs: Any) -> tuple[Any, Any]:
        fields = {k: kwargs.pop(k) for k in list(kwargs) if k not in _LOGGING_KWARGS}
        kwargs.setdefault("extra", {})[FIELDS] = fields
        return msg, kwargs


_LOGGING_KWARGS = {"exc_info", "stack_info", "stacklevel", "extra"}


def get_logger(name: str) -> EventLogger:
    return EventLogger(logging.getLogger(name), {})


class _TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        fields: dict[str, Any] = getattr(record, FIELDS, {})
        stamp = datetime.fromtimestamp(record.created, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        parts = [stamp, record.levelname.lower(), record.name, record.getMessage()]
        parts += [f"{key}={_text(value)}" for key, value in fields.items()]
        line = " ".join(parts)
        if record.exc_info:
            line += " error=" + _text(repr(record.exc_info[1]))
        return line


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        payload: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname.lower(),
            "logger": record.name,
            "event": record.getMessage(),
        }
        payload.update(getattr(record, FIELDS, {}))
        if record.exc_info:
            payload["error"] = repr(record.exc_info[1])
        return json.dumps(payload, default=str, ensure_ascii=False)


def _text(value: Any) -> str:
    rendered = str(value)
    if not rendered or any(c in rendered for c in ' "=\n\r\t'):
        return json.dumps(rendered, ensure_ascii=False)
    return rendered


def configure_logging(config: LoggingConfig) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if config.json_lines else _TextFormatter())
    root = logging.getLogger()
    for existing in list(root.handlers):
        root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(config.level)
    # Third-party chatter that would drown our events (cssutils warns on mso- properties).
    for noisy in ("cssutils", "premailer", "aiosmtpd", "mail.log", "apscheduler.executors", "alembic"):
        logging.getLogger(noisy).setLevel(logging.ERROR)
    logging.getLogger("uvicorn.access").setLevel(logging.WARNING)
