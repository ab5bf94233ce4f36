"""Engagement: each click (and per-reader open) once, with whether it counted and why not

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "clicks",
        sa.Column("id", BigId, nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("edition_id", sa.Integer(), nullable=False),
        sa.Column("article_id", sa.Integer(), nullable=True),
        sa.Column("filtered", sa.String(length=20), nullable=True),
        sa.Column("after_send_seconds", sa.Integer(), nullable=True),
        sa.Column("delivery_id", sa.BigInteger(), nullable=True),
        sa.Column("subscriber_id", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_clicks_edition_article", "clicks", ["edition_id", "article_id"])
    op.create_index("ix_clicks_at", "clicks", ["at"])
    op.create_index("ix_clicks_subscriber_id", "clicks", ["subscriber_id"])


def downgrade() -> None:
    op.drop_index("ix_clicks_subscriber_id", table_name="clicks")
    op.drop_index("ix_clicks_at", table_name="clicks")
    op.drop_index("ix_clicks_edition_article", table_name="clicks")
    op.drop_table("clicks")
