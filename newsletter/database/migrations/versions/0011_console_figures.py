"""The console's figures without counting a million rows: finished editions keep their counts;
indexes for sign-ups a day, an edition's failures and its clicks

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07
"""

from __future__ import annotations

import json

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

FAILED = sa.text("status = 'failed'")


def upgrade() -> None:
    with op.batch_alter_table("editions") as batch:
        batch.add_column(sa.Column("final_counts", sa.Text(), nullable=True))
    op.create_index("ix_subscribers_created_at", "subscribers", ["created_at"])
    op.create_index(
        "ix_deliveries_failed",
        "deliveries",
        ["edition_id", "updated_at", "id"],
        sqlite_where=FAILED,
        postgresql_where=FAILED,
    )
    op.drop_index("ix_clicks_edition_article", table_name="clicks")
    op.create_index("ix_clicks_edition_article", "clicks", ["edition_id", "article_id", "kind", "filtered"])
    _remember_finished_counts()


def _remember_finished_counts() -> None:
    """Editions done or cancelled before this version: their counts, once."""
    bind = op.get_bind()
    finished = bind.execute(
        sa.text("SELECT id FROM editions WHERE status IN ('done', 'cancelled')")
    ).scalars()
    for edition_id in list(finished):
        rows = bind.execute(
            sa.text("SELECT status, count(*) FROM deliveries WHERE edition_id = :e GROUP BY status"),
            {"e": edition_id},
        )
        counts = {status: int(n) for status, n in rows}
        bind.execute(
            sa.text("UPDATE editions SET final_counts = :c WHERE id = :e"),
            {"c": json.dumps(counts, sort_keys=True), "e": edition_id},
        )


def downgrade() -> None:
    op.drop_index("ix_clicks_edition_article", table_name="clicks")
    op.create_index("ix_clicks_edition_article", "clicks", ["edition_id", "article_id"])
    op.drop_index("ix_deliveries_failed", table_name="deliveries")
    op.drop_index("ix_subscribers_created_at", table_name="subscribers")
    with op.batch_alter_table("editions") as batch:
        batch.drop_column("final_counts")
