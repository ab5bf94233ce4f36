"""The relay that carried each ledger row; messages get updated_at like deliveries

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    for table in ("deliveries", "messages"):
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("relay", sa.String(length=40), nullable=True))
    with op.batch_alter_table("messages") as batch:
        batch.add_column(sa.Column("updated_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("messages") as batch:
        batch.drop_column("updated_at")
    for table in ("deliveries", "messages"):
        with op.batch_alter_table(table) as batch:
            batch.drop_column("relay")
