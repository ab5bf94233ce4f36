"""Request-scoped dependencies: the app context and a database session."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from newsletter.config import Settings
from newsletter.context import AppContext


def get_context(request: Request) -> AppContext:
    context: AppContext = request.app.state.context
    return context


def get_settings(request: Request) -> Settings:
    return get_context(request).settings


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    async with get_context(request).db.session() as session:
        yield session


ContextDep = Annotated[AppContext, Depends(get_context)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
SessionDep = Annotated[AsyncSession, Depends(get_session)]
