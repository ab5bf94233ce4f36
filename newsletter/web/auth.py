"""Who may call what: the admin API's bearer token, and the metrics' own."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from newsletter.config import Settings

_bearer = HTTPBearer(auto_error=False, description="The admin token from security.admin_token")
Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.context.settings
    return settings


def _matches(credentials: HTTPAuthorizationCredentials | None, *secrets: str) -> bool:
    given = (credentials.credentials if credentials is not None else "").encode()
    # Compare digests of equal length so the time taken says nothing about the token; every
    # candidate is compared, so neither does which one matched.
    matched = [hmac.compare_digest(given, secret.encode()) for secret in secrets if secret]
    return bool(given) and any(matched)


def _refuse() -> HTTPException:
    return HTTPException(
        status.HTTP_401_UNAUTHORIZED,
        detail="a valid admin bearer token is required",
        headers={"WWW-Authenticate": "Bearer"},
    )


async def require_admin(request: Request, credentials: Credentials) -> None:
    if not _matches(credentials, _settings(request).security.admin_token.get_secret_value()):
        raise _refuse()


async def require_metrics_reader(request: Request, credentials: Credentials) -> None:
    """server.metrics: "token" (the metrics token or the admin token), "public", or "off" (404)."""
    settings = _settings(request)
    mode = settings.server.metrics
    if mode == "off":
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail="Not Found")
    security = settings.security
    tokens = (security.metrics_token.get_secret_value(), security.admin_token.get_secret_value())
    if mode == "token" and not _matches(credentials, *tokens):
        raise _refuse()


AdminDep = Depends(require_admin)
MetricsDep = Depends(require_metrics_reader)
