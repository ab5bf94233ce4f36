"""Link nonces, token nonces of variants, AUTOINCREMENT subscriber ids, shared rate limits

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01
"""

from __future__ import annotations

from typing import Literal

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

# A random [0-9A-F]{12} per existing row, as models.new_token_nonce draws for new ones.
RANDOM_NONCE = {
    "sqlite": "upper(hex(randomblob(6)))",
    "postgresql": "upper(substr(md5(random()::text || id::text), 1, 12))",
}


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    with op.batch_alter_table("edition_variants") as batch:
        batch.add_column(sa.Column("token_nonce", sa.String(length=32), nullable=True))
    with op.batch_alter_table("subscribers") as batch:
        batch.add_column(sa.Column("token_nonce", sa.String(length=12), nullable=True))
        batch.add_column(sa.Column("legacy_links", sa.Boolean(), nullable=True))
    # Everyone subscribed so far holds links signed without a nonce: they keep working for them.
    op.execute(f"UPDATE subscribers SET token_nonce = {RANDOM_NONCE[dialect]}, legacy_links = true")
    # On SQLite the table is rebuilt with AUTOINCREMENT (see migrate.upgrade for foreign keys).
    recreate: Literal["always", "auto"] = "always" if dialect == "sqlite" else "auto"
    with op.batch_alter_table(
        "subscribers", recreate=recreate, table_kwargs={"sqlite_autoincrement": True}
    ) as batch:
        batch.alter_column("token_nonce", existing_type=sa.String(length=12), nullable=False)
        batch.alter_column("legacy_links", existing_type=sa.Boolean(), nullable=False)
    op.create_table(
        "rate_limits",
        sa.Column("bucket", sa.String(length=100), nullable=False),
        sa.Column("window_start", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("hits", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("bucket", "window_start", name=op.f("pk_rate_limits")),
    )


def downgrade() -> None:
    op.drop_table("rate_limits")
    with op.batch_alter_table("subscribers", recreate="always") as batch:
        batch.drop_column("legacy_links")
        batch.drop_column("token_nonce")
    with op.batch_alter_table("edition_variants") as batch:
        batch.drop_column("token_nonce")
