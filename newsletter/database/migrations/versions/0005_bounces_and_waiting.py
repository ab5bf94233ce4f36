"""Ledger rows say when their failure was a bounce; editions say when they wait on configuration

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    for table in ("deliveries", "messages"):
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("bounce", sa.String(length=10), nullable=True))
    with op.batch_alter_table("editions") as batch:
        batch.add_column(sa.Column("waiting_reason", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("editions") as batch:
        batch.drop_column("waiting_reason")
    for table in ("deliveries", "messages"):
        with op.batch_alter_table(table) as batch:
            batch.drop_column("bounce")
