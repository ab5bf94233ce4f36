"""The Jinja2 environment for email templates: built once, autoescaping every HTML template."""

from __future__ import annotations

import jinja2

from newsletter.config import Settings
from newsletter.rendering.content import one_line, wrap
from newsletter.resources import template_dirs


def _autoescape(name: str | None) -> bool:
    # Plain-text templates go out as text/plain, where HTML entities would be wrong.
    return not (name or "").endswith(".txt")


def make_environment(settings: Settings) -> jinja2.Environment:
    """Templates from the operator's `site.templates_dir`/email first, then the built-in ones."""
    loader = jinja2.FileSystemLoader(
        [str(path) for path in template_dirs("email", settings.site.templates_dir)]
    )
    environment = jinja2.Environment(
        loader=loader,
        autoescape=_autoescape,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        auto_reload=False,
    )
    environment.filters["wrap"] = wrap
    environment.filters["one_line"] = one_line
    return environment
