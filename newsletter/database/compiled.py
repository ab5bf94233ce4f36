"""Statements run for every message or every bounce, compiled once per dialect.

`Compiled` hands a statement to the driver with its parameters already in the driver's form
(`exec_driver_sql`: SQLAlchemy still wraps the driver's errors and fires its events). Through
`Connection.execute` the per-execution work (cache key, parameter processing for every bind,
result set-up) cost more CPU than SQLite's own work on such a statement. Parameters are the
statement's bindparams named `b_…`; any other bind (a status written into the statement) is
fixed at compile time. Results come back as the driver gives them (no type processing on the
way out): select and return plain integers and strings only.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, CursorResult, Dialect
from sqlalchemy.sql.expression import Executable

Shape = Callable[[Mapping[str, Any]], Any]


class Compiled:
    def __init__(self, statement: Executable) -> None:
        self.statement = statement
        self._compiled: dict[str, tuple[str, Shape]] = {}

    def execute(self, conn: Connection, row: Mapping[str, Any]) -> CursorResult[*tuple[Any, ...]]:
        sql, shape = self._for(conn.dialect)
        return conn.exec_driver_sql(sql, shape(row))

    def executemany(self, conn: Connection, rows: Sequence[Mapping[str, Any]]) -> int:
        """Run it once per row of parameters; the rows it changed."""
        sql, shape = self._for(conn.dialect)
        return int(conn.exec_driver_sql(sql, [shape(row) for row in rows]).rowcount)

    def _for(self, dialect: Dialect) -> tuple[str, Shape]:
        compiled = self._compiled.get(dialect.name)
        if compiled is None:
            compiled = self._compiled[dialect.name] = self._compile(dialect)
        return compiled

    def _compile(self, dialect: Dialect) -> tuple[str, Shape]:
        compiled = self.statement.compile(dialect=dialect)  # type: ignore[attr-defined]
        given = [name for name in compiled.binds if name.startswith("b_")]
        # Every parameter the SQL names, with the values fixed in the statement (the statuses).
        fixed = compiled.construct_params({name: None for name in given})
        processors = {
            name: processor
            for name in fixed
            if (processor := compiled.binds[name].type.dialect_impl(dialect).bind_processor(dialect))
        }
        order = tuple(compiled.positiontup or ()) if compiled.positional else None

        def shape(row: Mapping[str, Any]) -> Any:
            values = {**fixed, **row}
            for name, processor in processors.items():
                values[name] = processor(values[name])
            return tuple([values[name] for name in order]) if order is not None else values

        return str(compiled.string), shape
