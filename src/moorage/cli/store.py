"""The metadata store of a server that has run, opened by the commands that work on it offline (fsck, gc)."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
import sqlalchemy.exc

from moorage.meta.store import MetaStore
from moorage.settings import Settings, SettingsError

NEEDED_TABLES = frozenset({"repositories", "blobs", "repository_blobs", "manifests", "manifest_references", "tags",
                           "uploads"})


def open_existing_store(settings: Settings, tables: frozenset[str] = NEEDED_TABLES) -> MetaStore:
    """The server's metadata store, without creating anything: a check of the wrong place must say so, not
    invent an empty store and call it clean. ``tables``: what the command needs (a store from an older version
    gets them when its server next starts)."""
    if not settings.data_dir.is_dir():
        raise SettingsError(f"data_dir: there is no directory {settings.data_dir}; pass --data-dir (or set "
                            "MOORAGE_DATA_DIR) to the directory `moorage serve` keeps its data in")
    url = sa.engine.make_url(settings.database)
    if url.get_backend_name() == "sqlite" and not Path(url.database or "").is_file():
        raise SettingsError(f"data_dir: {settings.data_dir} holds no moorage database ({url.database} does not "
                            "exist); pass the data directory of a server that has run, or set "
                            "MOORAGE_DATABASE_URL to its database")
    store = MetaStore(settings.database)
    try:
        present = set(sa.inspect(store.engine).get_table_names())
    except sqlalchemy.exc.SQLAlchemyError as exc:
        store.dispose()
        # The driver's own message: SQLAlchemy's rendering could carry the URL and its password.
        raise SettingsError(f"database_url: cannot read the metadata database: {getattr(exc, 'orig', exc)}") \
            from None
    missing = tables - present
    if missing:
        store.dispose()
        raise SettingsError(f"database_url: the {url.get_backend_name()} database has no moorage tables "
                            f"({', '.join(sorted(missing))} missing); point --data-dir or MOORAGE_DATABASE_URL "
                            "at the server's store")
    return store
