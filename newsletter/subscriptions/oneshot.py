"""A new reader's whole signup as one statement, on PostgreSQL.

The subscriber, its subscriptions, the confirmation's outbox row and the audit event go in through
data-modifying CTEs that hang off the subscriber's INSERT. On a connection in autocommit one
statement is one transaction, so a signup costs one round trip instead of eight (BEGIN, the
suppression check, four INSERTs, COMMIT): through the async driver, each of them cost more CPU
than the rest of the request. SQLite has no data-modifying CTEs (and there the signup runs on the
ledger thread, where a statement is cheap).

Only for an address that is neither known nor suppressed: for anything else nothing is written
and `signup.sign_up`, which knows every case, decides in a transaction of its own.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from typing import Any, cast

from sqlalchemy import Connection, Table, bindparam, exists, insert, select, union_all
from sqlalchemy.dialects import postgresql
from sqlalchemy.sql import Insert, Select
from sqlalchemy.sql.schema import CallableColumnDefault, ScalarElementColumnDefault
from sqlalchemy.sql.selectable import CTE

from newsletter.database.models import Event, Message, Subscriber, Subscription, Suppression

SUBSCRIBERS = cast(Table, Subscriber.__table__)
SUBSCRIPTIONS = cast(Table, Subscription.__table__)
MESSAGES = cast(Table, Message.__table__)
EVENTS = cast(Table, Event.__table__)
# The parameters of the statement, by table; each row's subscriber_id is the new subscriber's.
Rows = Sequence[Mapping[str, Any]]


def insert_new(
    conn: Connection,
    *,
    email_hash: str,
    subscriber: Mapping[str, Any],
    subscriptions: Rows,
    messages: Rows,
    event: Mapping[str, Any],
) -> int | None:
    """The new subscriber's id, everything written; None (nothing written) when the address is
    known or has a suppression entry."""
    subscriber = _complete(SUBSCRIBERS, subscriber)
    subscriptions = [_complete(SUBSCRIPTIONS, row) for row in subscriptions]
    messages = [_complete(MESSAGES, row) for row in messages]
    event = _complete(EVENTS, event)
    statement = _statement(
        tuple(subscriber),
        tuple(tuple(_dependent(row)) for row in subscriptions),
        tuple(tuple(_dependent(row)) for row in messages),
        tuple(_dependent(event)),
    )
    parameters: dict[str, Any] = {"hash": email_hash, **_named("s", subscriber)}
    for prefix, rows in (("n", subscriptions), ("m", messages)):
        for index, row in enumerate(rows):
            parameters.update(_named(f"{prefix}{index}", _dependent(row)))
    parameters.update(_named("e", _dependent(event)))
    new_id: int | None = conn.scalar(statement, parameters)
    return new_id


def _complete(table: Table, row: Mapping[str, Any]) -> dict[str, Any]:
    """The row with the Python-side defaults of the columns it leaves out (a new token nonce):
    an INSERT … SELECT inside a CTE does not fill them in as a plain INSERT does."""
    completed = dict(row)
    for column in table.c:
        default = column.default
        if column.name in completed or default is None:
            continue
        if isinstance(default, CallableColumnDefault):
            # The models' defaults ignore the context (utcnow, new_token_nonce): there is none here.
            completed[column.name] = default.arg(None)  # type: ignore[arg-type]
        elif isinstance(default, ScalarElementColumnDefault):
            completed[column.name] = default.arg
    return completed


def _dependent(row: Mapping[str, Any]) -> dict[str, Any]:
    return {name: value for name, value in row.items() if name != "subscriber_id"}


def _named(prefix: str, row: Mapping[str, Any]) -> dict[str, Any]:
    return {f"{prefix}_{name}": value for name, value in row.items()}


# Built once per shape (the columns given, how many subscriptions and messages).
@functools.cache
def _statement(
    subscriber: tuple[str, ...],
    subscriptions: tuple[tuple[str, ...], ...],
    messages: tuple[tuple[str, ...], ...],
    event: tuple[str, ...],
) -> Insert:
    unsuppressed = select(*_binds(SUBSCRIBERS, "s", subscriber)).where(
        ~exists().where(Suppression.email_hash == bindparam("hash"))
    )
    new = (
        postgresql.insert(SUBSCRIBERS)
        .from_select(list(subscriber), unsuppressed)
        .on_conflict_do_nothing(index_elements=["email_key"])
        .returning(SUBSCRIBERS.c.id)
        .cte("new")
    )
    ctes = [new]
    for name, table, rows in (("n", SUBSCRIPTIONS, subscriptions), ("m", MESSAGES, messages)):
        if rows:
            ctes.append(_rows_of(new, table, name, rows).cte(f"{name}_rows"))
    audit = select(new.c.id, *_binds(EVENTS, "e", event))
    return (
        insert(EVENTS)
        .from_select(["subscriber_id", *event], audit)
        .returning(EVENTS.c.subscriber_id)
        .add_cte(*ctes)
    )


def _rows_of(new: CTE, table: Table, prefix: str, rows: tuple[tuple[str, ...], ...]) -> Insert:
    columns = rows[0]
    if any(row != columns for row in rows):
        raise ValueError(f"{table.name}: every row must name the same columns")
    selects: list[Select[Any]] = [
        select(new.c.id, *_binds(table, f"{prefix}{index}", columns)) for index in range(len(rows))
    ]
    source = selects[0] if len(selects) == 1 else union_all(*selects)
    return insert(table).from_select(["subscriber_id", *columns], source)


def _binds(table: Table, prefix: str, columns: Sequence[str]) -> list[Any]:
    # Typed, so that the values are converted as for any INSERT and PostgreSQL is told each type.
    return [bindparam(f"{prefix}_{name}", type_=table.c[name].type) for name in columns]
