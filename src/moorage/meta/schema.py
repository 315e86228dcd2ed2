"""Tables of the metadata store (SQLAlchemy Core). Alembic migrations in ``migrations/`` create them."""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()

repositories = sa.Table(
    "repositories", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(255), nullable=False, unique=True),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("updated_at", sa.Float, nullable=False),
)

#: Every blob the content store holds, once, whatever the number of repositories linking it.
blobs = sa.Table(
    "blobs", metadata,
    sa.Column("digest", sa.String(200), primary_key=True),
    sa.Column("size", sa.BigInteger, nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
)

#: A blob is visible in a repository only through a link.
repository_blobs = sa.Table(
    "repository_blobs", metadata,
    sa.Column("repository_id", sa.Integer, sa.ForeignKey("repositories.id", ondelete="CASCADE"),
              primary_key=True),
    sa.Column("digest", sa.String(200), sa.ForeignKey("blobs.digest"), primary_key=True),
    sa.Column("created_at", sa.Float, nullable=False),
)

manifests = sa.Table(
    "manifests", metadata,
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
    sa.Index("ix_manifests_subject", "repository_id", "subject"),
)

#: What a manifest points at (layers, config, child manifests): for integrity checks and GC.
manifest_references = sa.Table(
    "manifest_references", metadata,
    sa.Column("manifest_id", sa.Integer, sa.ForeignKey("manifests.id", ondelete="CASCADE"),
              primary_key=True),
    sa.Column("digest", sa.String(200), primary_key=True),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Index("ix_manifest_references_digest", "digest"),
)

tags = sa.Table(
    "tags", metadata,
    sa.Column("repository_id", sa.Integer, sa.ForeignKey("repositories.id", ondelete="CASCADE"),
              primary_key=True),
    sa.Column("name", sa.String(128), primary_key=True),
    sa.Column("manifest_id", sa.Integer, sa.ForeignKey("manifests.id", ondelete="CASCADE"),
              nullable=False),
    sa.Column("updated_at", sa.Float, nullable=False),
    sa.Index("ix_tags_manifest", "manifest_id"),
)

#: Upload sessions live here, not in a process, so any worker or replica can continue one.
uploads = sa.Table(
    "uploads", metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("repository", sa.String(255), nullable=False),
    sa.Column("offset", sa.BigInteger, nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("updated_at", sa.Float, nullable=False),
)
