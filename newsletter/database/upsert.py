"""INSERT … ON CONFLICT, which SQLite and PostgreSQL spell alike but SQLAlchemy builds per dialect."""

from __future__ import annotations

from typing import Any

from sqlalchemy.dialects import postgresql, sqlite


def insert_for(dialect: str, table: Any) -> sqlite.Insert | postgresql.Insert:
    """An INSERT into `table` (a model or a Table) that takes `on_conflict_do_*` clauses."""
    return postgresql.insert(table) if dialect == "postgresql" else sqlite.insert(table)
