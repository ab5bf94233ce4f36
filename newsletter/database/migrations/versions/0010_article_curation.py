"""Article curation in the console: hidden and pinned articles, and an index for title search

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-08
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

TITLE_INDEX = "ix_articles_title_search"


def upgrade() -> None:
    with op.batch_alter_table("articles") as batch:
        batch.add_column(sa.Column("hidden_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("pinned_at", sa.DateTime(timezone=True), nullable=True))
    op.create_index("ix_articles_pinned_at", "articles", ["pinned_at"])
    dialect = op.get_bind().dialect.name
    if dialect == "postgresql" and _trigrams():
        op.create_index(
            TITLE_INDEX,
            "articles",
            ["title"],
            postgresql_using="gin",
            postgresql_ops={"title": "gin_trgm_ops"},
        )
    else:
        # SQLite cannot index a search within titles; nor can PostgreSQL without pg_trgm. An empty
        # index keeps the schema as the models describe it at no cost, and searches scan instead.
        where = sa.text("false" if dialect == "postgresql" else "0")
        op.create_index(TITLE_INDEX, "articles", ["title"], sqlite_where=where, postgresql_where=where)


def _trigrams() -> bool:
    """pg_trgm installed here (it ships with PostgreSQL; a database owner may create it since 13)."""
    bind = op.get_bind()
    try:
        with bind.begin_nested():
            bind.execute(sa.text("CREATE EXTENSION IF NOT EXISTS pg_trgm"))
    except sa.exc.DBAPIError:
        return False
    return True


def downgrade() -> None:
    op.drop_index(TITLE_INDEX, table_name="articles")
    op.drop_index("ix_articles_pinned_at", table_name="articles")
    with op.batch_alter_table("articles") as batch:
        batch.drop_column("pinned_at")
        batch.drop_column("hidden_at")
