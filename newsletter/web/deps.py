"""Request-scoped dependencies: the app context and a database session."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from newsletter.config import Settings
from newsletter.context import AppContext


def context_of(request: Request) -> AppContext:
    context: AppContext = request.app.state.context
    return context


# Dependencies are coroutines even where they need not be: FastAPI runs a plain function on
# a worker thread, and that hop cost a signup more than its own parsing.
async def get_context(request: Request) -> AppContext:
    return context_of(request)


async def get_settings(request: Request) -> Settings:
    return context_of(request).settings


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    async with context_of(request).db.session() as session:
        yield session


ContextDep = Annotated[AppContext, Depends(get_context)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
SessionDep = Annotated[AsyncSession, Depends(get_session)]
