"""Storage lifecycle: blob links carry a lease, deletions leave a tombstone while under way, GC runs and
job schedules are recorded.

Links that exist already get a lease of an hour from their creation: a push under way when the server
was upgraded keeps its blobs as it would have.

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("repository_blobs") as batch:
        batch.add_column(sa.Column("leased_until", sa.Float, nullable=False, server_default="0"))
        batch.create_index("ix_repository_blobs_digest", ["digest"])
    op.execute("UPDATE repository_blobs SET leased_until = created_at + 3600")
    op.create_table(
        "blob_tombstones",
        sa.Column("digest", sa.String(200), primary_key=True),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
    )
    op.create_table(
        "gc_runs",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("trigger", sa.String(16), nullable=False),
        sa.Column("dry_run", sa.Boolean, nullable=False),
        sa.Column("delete_untagged", sa.Boolean, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("blobs_deleted", sa.Integer, nullable=False, server_default="0"),
        sa.Column("manifests_deleted", sa.Integer, nullable=False, server_default="0"),
        sa.Column("bytes_freed", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("log", sa.Text, nullable=False, server_default=""),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("updated_at", sa.Float, nullable=False),
    )
    op.create_table(
        "schedules",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("type", sa.String(16), nullable=False),
        sa.Column("cron", sa.String(128), nullable=False, server_default=""),
        sa.Column("parameters_json", sa.Text, nullable=False, server_default="{}"),
        sa.Column("next_run", sa.Float, nullable=True),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("updated_at", sa.Float, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("schedules")
    op.drop_table("gc_runs")
    op.drop_table("blob_tombstones")
    with op.batch_alter_table("repository_blobs") as batch:
        batch.drop_index("ix_repository_blobs_digest")
        batch.drop_column("leased_until")
