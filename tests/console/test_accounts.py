"""Console accounts: what a password matches, and the rules on names, roles and owners."""

from __future__ import annotations

import asyncio

import pytest

from newsletter.console import accounts
from newsletter.console.accounts import MAX_PASSWORD, Role
from newsletter.context import AppContext
from newsletter.errors import InvalidInput


async def test_a_password_matches_itself_only(context: AppContext) -> None:
    longest = "p" * MAX_PASSWORD
    await accounts.add(context, "olivia", longest, Role.OWNER)
    assert await accounts.authenticate(context, "olivia", longest) is not None
    assert await accounts.authenticate(context, "olivia", longest + "anything") is None
    assert await accounts.authenticate(context, "olivia", longest[:-1]) is None
    assert await accounts.authenticate(context, "nobody", longest) is None


async def test_names_are_unique_even_when_added_at_once(context: AppContext) -> None:
    added = await asyncio.gather(
        *(accounts.add(context, "same", "a long enough password", Role.EDITOR) for _ in range(3)),
        return_exceptions=True,
    )
    assert sum(isinstance(a, accounts.Account) for a in added) == 1
    assert all(
        isinstance(a, InvalidInput) and a.field == "name"
        for a in added
        if not isinstance(a, accounts.Account)
    )


async def test_the_last_owner_stays(context: AppContext) -> None:
    await accounts.add(context, "olivia", "a long enough password", Role.OWNER)
    await accounts.add(context, "otto", "a long enough password", Role.OWNER)
    await accounts.remove(context, "otto")
    with pytest.raises(InvalidInput, match="last owner"):
        await accounts.remove(context, "olivia")
    assert [a.name for a in await accounts.listing(context)] == ["olivia"]
