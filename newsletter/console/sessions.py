"""Console sessions: a random token in a signed cookie, its SHA-256 in the database, a CSRF token
derived from it; idle and absolute expiry; failed logins limited per account and per address."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import timedelta

from itsdangerous import BadSignature, Signer
from sqlalchemy import delete, select

from newsletter.config import Settings
from newsletter.console.accounts import Account, Role
from newsletter.context import AppContext
from newsletter.database.models import Admin, AdminSession, utcnow
from newsletter.database.ratelimit import SharedRateLimiter

COOKIE = "newsletter_console"
LOGIN_COOKIE = "newsletter_console_login"
LOCKOUT_SECONDS = 15 * 60
# A session's last-seen time is written at most this often (not once per request).
SEEN_EVERY = timedelta(seconds=60)


@dataclass(frozen=True)
class Login:
    """A live session: whose, and the token its forms must carry."""

    session_id: str
    account: Account
    csrf: str


class Sessions:
    """Built once per app from the settings."""

    def __init__(self, settings: Settings) -> None:
        secret = settings.security.secret_key.get_secret_value()
        self._signer = Signer(secret, salt="newsletter.console-session")
        self._csrf_key = hashlib.sha256(b"console-csrf\0" + secret.encode()).digest()
        self._idle = timedelta(minutes=settings.console.idle_minutes)
        self._lifetime = timedelta(hours=settings.console.max_hours)
        attempts, key = settings.console.login_attempts, secret
        self.by_account = SharedRateLimiter(
            "console-login", attempts, key=key, window_seconds=LOCKOUT_SECONDS
        )
        self.by_address = SharedRateLimiter("console-from", attempts, key=key, window_seconds=LOCKOUT_SECONDS)

    @property
    def lifetime_seconds(self) -> int:
        return int(self._lifetime.total_seconds())

    async def start(self, context: AppContext, account: Account, replacing: str | None) -> str:
        """A new session (never the one the browser came with: no fixation); the cookie's value."""
        token = secrets.token_urlsafe(32)
        now = utcnow()
        async with context.db.session() as session:
            if replacing is not None and (old := self._session_id(replacing)) is not None:
                await session.execute(delete(AdminSession).where(AdminSession.id == old))
            session.add(
                AdminSession(
                    id=_digest(token),
                    admin_id=account.id,
                    created_at=now,
                    seen_at=now,
                    expires_at=now + self._lifetime,
                )
            )
            await session.commit()
        return self._signer.sign(token).decode()

    async def resolve(self, context: AppContext, cookie: str | None) -> Login | None:
        """The session the cookie names, if it is live (an expired one is deleted)."""
        session_id = self._session_id(cookie) if cookie else None
        if session_id is None:
            return None
        now = utcnow()
        async with context.db.session() as session:
            found = (
                await session.execute(
                    select(AdminSession, Admin)
                    .join(Admin, Admin.id == AdminSession.admin_id)
                    .where(AdminSession.id == session_id)
                )
            ).first()
            if found is None:
                return None
            live, admin = found
            if now >= live.expires_at or now - live.seen_at >= self._idle:
                await session.delete(live)
                await session.commit()
                return None
            if now - live.seen_at >= SEEN_EVERY:
                live.seen_at = now
                await session.commit()
            account = Account(
                admin.id, admin.name, Role(admin.role), admin.created_at, admin.password_changed_at
            )
        return Login(session_id, account, self.csrf_for(session_id))

    async def end(self, context: AppContext, login: Login) -> None:
        async with context.db.session() as session:
            await session.execute(delete(AdminSession).where(AdminSession.id == login.session_id))
            await session.commit()

    def csrf_for(self, value: str) -> str:
        """The form token bound to a session (or to the login form's own cookie)."""
        return hmac.new(self._csrf_key, value.encode(), "sha256").hexdigest()

    def csrf_matches(self, value: str, given: str) -> bool:
        return hmac.compare_digest(self.csrf_for(value), given)

    def _session_id(self, cookie: str) -> str | None:
        try:
            return _digest(self._signer.unsign(cookie).decode())
        except (BadSignature, UnicodeDecodeError):
            return None


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()
