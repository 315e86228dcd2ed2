"""Bring a metadata store's schema to the latest Alembic revision."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

from moorage.meta.store import MetaStore

MIGRATIONS = Path(__file__).parent / "migrations"


def upgrade(store: MetaStore) -> None:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with store.engine.connect() as conn:
        if store.is_sqlite:
            # One migrator at a time, even when several processes start together.
            conn = conn.execution_options(moorage_write=True)
        config.attributes["connection"] = conn
        command.upgrade(config, "head")
        conn.commit()
