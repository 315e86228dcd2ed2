"""``moorage migrate-storage``: copy an embedded installation (SQLite and files) into the scale-out setup the
settings describe (``database_url`` on PostgreSQL, ``storage_backend = s3``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import sqlalchemy.exc
import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn, TransferSpeedColumn

from moorage.blobs.factory import build_driver
from moorage.blobs.migration import MigrationReport, TargetNotEmpty, copy_blobs, copy_database
from moorage.cli.store import open_existing_store
from moorage.core.errors import DomainError
from moorage.meta.migrate import upgrade
from moorage.meta.store import MetaStore
from moorage.settings import Settings, SettingsError, load_settings


def _fail(message: str) -> typer.Exit:
    Console(stderr=True).print(f"[bold red]error:[/] {escape(message)}", soft_wrap=True, highlight=False)
    return typer.Exit(code=2)


def migrate_storage_command(
    source: Annotated[Path, typer.Option("--from", help="Data directory of the embedded installation to copy "
                                         "(its moorage.db and blobs/); stop its server first.")],
    config: Annotated[Path | None, typer.Option(help="TOML settings of the target (database_url, storage_backend "
                                                "= s3, s3_*). Env: MOORAGE_CONFIG and MOORAGE_*")] = None,
    parallel: Annotated[int, typer.Option(min=1, max=64, help="Blobs copied at once.")] = 4,
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON summary on stdout.")] = False,
) -> None:
    """Copy every blob into the object store (re-verifying each digest) and the metadata into the target database.

    Resumable: run it again after an interruption and it copies what is not there yet. Exit status: 0 done;
    1 some blobs could not be copied (the database is then not copied); 2 the settings or a store are unusable.
    """
    target = load_settings(config=config)
    if target.storage_backend != "s3":
        raise SettingsError("storage_backend: the target of migrate-storage keeps blobs in object storage; set "
                            "storage_backend = s3 and the s3_* settings (MOORAGE_STORAGE_BACKEND=s3)")
    if not target.database_url or target.database_url.startswith("sqlite"):
        raise SettingsError("database_url: the target of migrate-storage is a server database; set database_url "
                            "(MOORAGE_DATABASE_URL) to the new, empty PostgreSQL database")
    source_settings = Settings(data_dir=source.resolve())
    if not (source_settings.data_dir / "moorage.db").is_file():
        raise SettingsError(f"--from: {source} holds no moorage.db; pass the data directory of the embedded "
                            "installation to copy (where its `moorage serve` kept moorage.db and blobs/)")
    origin = open_existing_store(source_settings)
    report = MigrationReport()
    try:
        destination = MetaStore(target.database)
        try:
            _migrate(origin, source_settings.data_dir, destination, target, report, parallel, as_json)
        finally:
            destination.dispose()
    except TargetNotEmpty as exc:
        raise _fail(str(exc)) from None
    except (sqlalchemy.exc.OperationalError, DomainError, OSError) as exc:
        raise _fail(f"moorage migrate-storage could not finish: {getattr(exc, 'orig', exc)}; run it again "
                    "once the cause is fixed (what was copied stays)") from None
    finally:
        origin.dispose()
    if as_json:
        typer.echo(json.dumps(report.to_dict(), indent=2))
    else:
        _print(report, source_settings.data_dir)
    if not report.ok:
        raise typer.Exit(code=1)


def _migrate(origin: MetaStore, source_dir: Path, destination: MetaStore, target: Settings,
             report: MigrationReport, parallel: int, quiet: bool) -> None:
    # The source at the latest schema, so every column the target has is there to read.
    for store in (origin, destination):
        with store.setup_lock():
            upgrade(store)
    driver = build_driver(target)
    if quiet:
        copy_blobs(origin, source_dir, driver, report, lambda done, total: None, parallel)
    else:
        with Progress(TextColumn("copying blobs"), BarColumn(), DownloadColumn(binary_units=True),
                      TransferSpeedColumn(), TimeRemainingColumn(), console=Console(stderr=True)) as bar:
            task = bar.add_task("blobs", total=None)
            copy_blobs(origin, source_dir, driver, report,
                       lambda done, total: bar.update(task, completed=done, total=total), parallel)
    if not report.failed:
        copy_database(origin, destination, report)


def _print(report: MigrationReport, source: Path) -> None:
    console = Console()
    console.print(f"blobs: {report.copied} copied ({report.bytes_copied} bytes), {report.already_there} already "
                  f"there, {len(report.failed)} failed, of {report.blobs}", highlight=False)
    for digest, why in sorted(report.failed.items()):
        console.print(f"  [bold red]✗[/] {digest}: {escape(why)}", soft_wrap=True, highlight=False)
    if report.failed:
        console.print("[bold red]the database was not copied[/]: fix the blobs above and run the command again",
                      highlight=False)
        return
    rows = sum(report.tables.values())
    console.print(f"database: {report.database} ({rows} rows in {len(report.tables)} tables)", highlight=False)
    console.print(f"Start the new replicas with the secret key of {escape(str(source / 'secret.key'))} "
                  "(secret_key / MOORAGE_SECRET_KEY), or their tokens and robots will not open.", soft_wrap=True,
                  highlight=False)


def register(app: typer.Typer) -> None:
    app.command("migrate-storage")(migrate_storage_command)



