"""``moorage gc``: garbage collection on demand, while the registry keeps serving."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from moorage.blobs.factory import build_driver
from moorage.cli.store import NEEDED_TABLES, open_existing_store
from moorage.core.gc import GarbageCollector
from moorage.meta.gc import GCModel
from moorage.settings import load_settings


def gc(
    dry_run: Annotated[bool, typer.Option("--dry-run", help="List what a real run would delete; delete nothing.")]
    = False,
    delete_untagged: Annotated[bool, typer.Option("--delete-untagged", help="Also delete manifests no tag keeps "
                                                  "(never an index's child or a referrer of a kept manifest).")]
    = False,
    data_dir: Annotated[Path | None, typer.Option(help="Data directory of the registry. Env: MOORAGE_DATA_DIR")]
    = None,
    config: Annotated[Path | None, typer.Option(help="TOML settings file. Env: MOORAGE_CONFIG")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the outcome as JSON.")] = False,
) -> None:
    """Delete blobs nothing references (and, with --delete-untagged, untagged manifests); safe while the
    registry serves: blobs in a push that has not finished are kept by their lease and the grace period."""
    settings = load_settings(data_dir=data_dir, config=config)
    store = open_existing_store(settings, NEEDED_TABLES | {"gc_runs", "blob_tombstones"})
    console = Console(stderr=True)
    try:
        collector = GarbageCollector(GCModel(store), build_driver(settings), settings.gc_grace_minutes)
        with Progress(TextColumn("deleting blobs"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                      console=console, transient=True, disable=as_json or dry_run) as bar:
            task = bar.add_task("gc", total=None)
            outcome = collector.collect(dry_run=dry_run, delete_untagged=delete_untagged,
                                        progress=lambda done, total: bar.update(task, completed=done, total=total))
    finally:
        store.dispose()
    if as_json:
        print(json.dumps(asdict(outcome)))
        return
    for line in outcome.log:
        console.print(line, highlight=False, soft_wrap=True, markup=False)
    verb = "would free" if dry_run else "freed"
    console.print(f"gc run {outcome.run_id}: {outcome.manifests} manifest(s) and {outcome.blobs} blob(s), {verb} "
                  f"{outcome.bytes} bytes", highlight=False, soft_wrap=True)


def register(app: typer.Typer) -> None:
    app.command()(gc)
