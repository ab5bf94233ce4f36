"""Console accounts: names, Argon2id password hashes and roles (owner, editor, viewer)."""

from __future__ import annotations

import asyncio
import functools
import re
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from newsletter.context import AppContext
from newsletter.database.models import Admin, AdminSession, utcnow
from newsletter.errors import InvalidInput, NotFound

NAME = re.compile(r"[a-z0-9][a-z0-9._@-]{0,63}")
MIN_PASSWORD = 12
MAX_PASSWORD = 1_024

# argon2-cffi's defaults (RFC 9106's second recommendation: Argon2id, 64 MiB, 3 passes).
_hasher = PasswordHasher()


@functools.cache
def _unknown() -> str:
    """Checked when the name is unknown, so a login takes as long whether or not the account
    exists (made on first use: a hash costs 64 MiB and a third of a second)."""
    return _hasher.hash("no such account: this hash is only ever compared, never matched")


class Role(StrEnum):
    OWNER = "owner"  # everything, accounts and settings included
    EDITOR = "editor"  # articles, previews, test sends, sends, editions
    VIEWER = "viewer"  # read-only

    def may(self, needed: Role) -> bool:
        return _RANK[self] >= _RANK[needed]


_RANK = {Role.VIEWER: 0, Role.EDITOR: 1, Role.OWNER: 2}


@dataclass(frozen=True)
class Account:
    id: int
    name: str
    role: Role
    created_at: datetime
    password_changed_at: datetime

    def as_json(self) -> dict[str, object]:
        return {
            "name": self.name,
            "role": self.role.value,
            "created_at": self.created_at.isoformat(),
            "password_changed_at": self.password_changed_at.isoformat(),
        }


def role_of(value: str) -> Role:
    try:
        return Role(value)
    except ValueError:
        raise InvalidInput(
            "role", f"must be one of {', '.join(r.value for r in Role)} (got {value!r})"
        ) from None


def check_name(name: str) -> str:
    if not NAME.fullmatch(name):
        raise InvalidInput(
            "name",
            "1-64 characters: lower-case letters, digits and . _ @ - (starting with a letter or digit)",
        )
    return name


def check_password(password: str) -> str:
    if len(password) < MIN_PASSWORD:
        raise InvalidInput("password", f"at least {MIN_PASSWORD} characters")
    if len(password) > MAX_PASSWORD:
        raise InvalidInput("password", f"at most {MAX_PASSWORD} characters")
    return password


async def add(context: AppContext, name: str, password: str, role: Role) -> Account:
    check_name(name)
    hashed = await asyncio.to_thread(_hasher.hash, check_password(password))
    taken = InvalidInput("name", f"an account named {name!r} exists already")
    async with context.db.session() as session:
        if await session.scalar(select(Admin.id).where(Admin.name == name)) is not None:
            raise taken
        admin = Admin(name=name, password_hash=hashed, role=role.value)
        session.add(admin)
        try:
            await session.flush()
        except IntegrityError:  # added by someone else meanwhile
            raise taken from None
        account = _account(admin)
        await session.commit()
    return account


async def listing(context: AppContext) -> list[Account]:
    async with context.db.session() as session:
        return [_account(a) for a in await session.scalars(select(Admin).order_by(Admin.name))]


async def find(context: AppContext, admin_id: int) -> Account | None:
    async with context.db.session() as session:
        admin = await session.get(Admin, admin_id)
        return _account(admin) if admin is not None else None


async def remove(context: AppContext, name: str) -> None:
    """Delete the account and its sessions; the last owner stays (someone must manage accounts)."""
    async with context.db.session() as session:
        admin = await session.scalar(select(Admin).where(Admin.name == name))
        if admin is None:
            raise NotFound(f"no account named {name!r}")
        if admin.role == Role.OWNER and await _owners(session) <= 1:
            raise InvalidInput("name", f"{name!r} is the last owner: add another owner first")
        await session.execute(delete(AdminSession).where(AdminSession.admin_id == admin.id))
        await session.delete(admin)
        await session.commit()


async def set_password(context: AppContext, name: str, password: str) -> None:
    """A new password; every session of the account ends."""
    check_password(password)
    async with context.db.session() as session:
        if await session.scalar(select(Admin.id).where(Admin.name == name)) is None:
            raise NotFound(f"no account named {name!r}")
    hashed = await asyncio.to_thread(_hasher.hash, password)
    async with context.db.session() as session:
        admin = await session.scalar(select(Admin).where(Admin.name == name))
        if admin is None:
            raise NotFound(f"no account named {name!r}")
        admin.password_hash = hashed
        admin.password_changed_at = utcnow()
        await session.execute(delete(AdminSession).where(AdminSession.admin_id == admin.id))
        await session.commit()


async def authenticate(context: AppContext, name: str, password: str) -> Account | None:
    """The account if `password` is its password. Hashing runs off the event loop."""
    async with context.db.session() as session:
        admin = await session.scalar(select(Admin).where(Admin.name == name))
    stored = admin.password_hash if admin is not None else _unknown()
    # An over-long attempt matches nothing, but costs the same time as any other.
    matched = await asyncio.to_thread(_verify, stored, password if len(password) <= MAX_PASSWORD else "")
    if not matched or admin is None or len(password) > MAX_PASSWORD:
        return None
    if _hasher.check_needs_rehash(stored):
        await _rehash(context, admin.id, password)
    return _account(admin)


def _verify(stored: str, password: str) -> bool:
    try:
        return _hasher.verify(stored, password)
    except (VerificationError, InvalidHashError):
        return False


async def _rehash(context: AppContext, admin_id: int, password: str) -> None:
    hashed = await asyncio.to_thread(_hasher.hash, password)
    async with context.db.session() as session:
        admin = await session.get(Admin, admin_id)
        if admin is not None:
            admin.password_hash = hashed
            await session.commit()


async def _owners(session: AsyncSession) -> int:
    """The owners, locked until the transaction ends: two removals at once cannot both see two."""
    query = select(Admin.id).where(Admin.role == Role.OWNER).with_for_update()
    return len((await session.scalars(query)).all())


def _account(admin: Admin) -> Account:
    return Account(admin.id, admin.name, Role(admin.role), admin.created_at, admin.password_changed_at)
