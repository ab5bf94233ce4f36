"""The console's subscribers pages."""

from __future__ import annotations

from fastapi import APIRouter

from newsletter.web.console import PREFIX

router = APIRouter(prefix=PREFIX, include_in_schema=False)
