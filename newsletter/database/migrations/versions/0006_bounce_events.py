"""Bounces and complaints after acceptance: one row each; suppressions may keep the address

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("suppressions") as batch:
        batch.add_column(sa.Column("email", sa.String(length=320), nullable=True))
    op.create_table(
        "bounce_events",
        sa.Column("id", BigId, nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("source", sa.String(length=20), nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("event_key", sa.String(length=200), nullable=False),
        sa.Column("recipient", sa.String(length=320), nullable=True),
        sa.Column("status", sa.String(length=20), nullable=True),
        sa.Column("diagnostic", sa.String(length=1000), nullable=True),
        sa.Column("feedback_type", sa.String(length=40), nullable=True),
        sa.Column("matched_by", sa.String(length=20), nullable=True),
        sa.Column("outcome", sa.String(length=20), nullable=False),
        sa.Column("subscriber_id", sa.Integer(), nullable=True),
        sa.Column("edition_id", sa.Integer(), nullable=True),
        sa.Column("delivery_id", sa.BigInteger(), nullable=True),
        sa.Column("message_id", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_bounce_events")),
        sa.UniqueConstraint("event_key", name=op.f("uq_bounce_events_event_key")),
    )
    op.create_index(op.f("ix_bounce_events_received_at"), "bounce_events", ["received_at"])
    op.create_index(op.f("ix_bounce_events_edition_id"), "bounce_events", ["edition_id"])
    op.create_index(
        "ix_bounce_events_subscriber_kind", "bounce_events", ["subscriber_id", "kind", "received_at"]
    )


def downgrade() -> None:
    op.drop_table("bounce_events")
    with op.batch_alter_table("suppressions") as batch:
        batch.drop_column("email")
