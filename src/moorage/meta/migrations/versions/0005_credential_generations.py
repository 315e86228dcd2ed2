"""Accounts carry a credential generation; refresh tokens are bound to an account id and generation.

Refresh tokens issued before this revision name their account only by name: they are dropped, and
their holders log in once more.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    for table in ("users", "robots"):
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("generation", sa.Integer, nullable=False, server_default="0"))
    op.execute("DELETE FROM refresh_tokens")
    with op.batch_alter_table("refresh_tokens") as batch:
        batch.add_column(sa.Column("account_kind", sa.String(16), nullable=False, server_default=""))
        batch.add_column(sa.Column("account_id", sa.Integer, nullable=False, server_default="0"))
        batch.add_column(sa.Column("generation", sa.Integer, nullable=False, server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("refresh_tokens") as batch:
        batch.drop_column("generation")
        batch.drop_column("account_id")
        batch.drop_column("account_kind")
    for table in ("robots", "users"):
        with op.batch_alter_table(table) as batch:
            batch.drop_column("generation")
