"""The admin API's bearer token check."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

_bearer = HTTPBearer(auto_error=False, description="The admin token from security.admin_token")


async def require_admin(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> None:
    expected = request.app.state.context.settings.security.admin_token.get_secret_value()
    given = credentials.credentials if credentials is not None else ""
    # Compare digests of equal length so the time taken says nothing about the token.
    if not hmac.compare_digest(given.encode(), expected.encode()) or not given:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            detail="a valid admin bearer token is required",
            headers={"WWW-Authenticate": "Bearer"},
        )


AdminDep = Depends(require_admin)
