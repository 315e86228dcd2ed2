"""Registry content: repositories, blobs and their links, manifests, tags, upload sessions.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "repositories",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(255), nullable=False, unique=True),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("updated_at", sa.Float, nullable=False),
    )
    op.create_table(
        "blobs",
        sa.Column("digest", sa.String(200), primary_key=True),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
    )
    op.create_table(
        "repository_blobs",
        sa.Column("repository_id", sa.Integer, sa.ForeignKey("repositories.id", ondelete="CASCADE"),
                  primary_key=True),
        sa.Column("digest", sa.String(200), sa.ForeignKey("blobs.digest"), primary_key=True),
        sa.Column("created_at", sa.Float, nullable=False),
    )
    op.create_table(
        "manifests",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("repository_id", sa.Integer, sa.ForeignKey("repositories.id", ondelete="CASCADE"),
                  nullable=False),
        sa.Column("digest", sa.String(200), nullable=False),
        sa.Column("media_type", sa.String(255), nullable=False),
        sa.Column("artifact_type", sa.String(255), nullable=True),
        sa.Column("subject", sa.String(200), nullable=True),
        sa.Column("annotations", sa.Text, nullable=True),
        sa.Column("size", sa.Integer, nullable=False),
        sa.Column("content", sa.LargeBinary, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.UniqueConstraint("repository_id", "digest", name="uq_manifests_repository_digest"),
    )
    op.create_index("ix_manifests_subject", "manifests", ["repository_id", "subject"])
    op.create_table(
        "manifest_references",
        sa.Column("manifest_id", sa.Integer, sa.ForeignKey("manifests.id", ondelete="CASCADE"),
                  primary_key=True),
        sa.Column("digest", sa.String(200), primary_key=True),
        sa.Column("kind", sa.String(16), nullable=False),
    )
    op.create_index("ix_manifest_references_digest", "manifest_references", ["digest"])
    op.create_table(
        "tags",
        sa.Column("repository_id", sa.Integer, sa.ForeignKey("repositories.id", ondelete="CASCADE"),
                  primary_key=True),
        sa.Column("name", sa.String(128), primary_key=True),
        sa.Column("manifest_id", sa.Integer, sa.ForeignKey("manifests.id", ondelete="CASCADE"),
                  nullable=False),
        sa.Column("updated_at", sa.Float, nullable=False),
    )
    op.create_index("ix_tags_manifest", "tags", ["manifest_id"])
    op.create_table(
        "uploads",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("repository", sa.String(255), nullable=False),
        sa.Column("offset", sa.BigInteger, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("updated_at", sa.Float, nullable=False),
    )


def downgrade() -> None:
    for table in ("uploads", "tags", "manifest_references", "manifests", "repository_blobs", "blobs",
                  "repositories"):
        op.drop_table(table)
