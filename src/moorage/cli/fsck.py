"""``moorage fsck``: verify every blob, every manifest and the database's view of the store; quarantine
what does not match with ``--repair``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import sqlalchemy.exc
import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn, TransferSpeedColumn

from moorage.cli.store import open_existing_store
from moorage.core.fsck import ORPHAN_GRACE_SECONDS, FsckReport, Problem, run_fsck
from moorage.settings import SettingsError, load_settings


def _size(n: int) -> str:
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{n} B"


def _mark(problem: Problem) -> str:
    if problem.repaired:
        return "[green]✓[/green]"
    return "[yellow]![/yellow]" if problem.severity == "warning" else "[bold red]✗[/bold red]"


def _print_report(report: FsckReport, console: Console) -> None:
    checked = report.checked
    console.print(f"[bold]moorage fsck[/bold] {escape(report.data_dir)}  [dim]metadata {report.database}"
                  f"{', repairing' if report.repair else ''}[/dim]", soft_wrap=True, highlight=False)
    console.print(f"  checked {checked.blobs} blob(s) ({_size(checked.blob_bytes)}), {checked.blob_files} file(s) in "
                  f"the blob store, {checked.manifests} manifest(s), {checked.upload_sessions} upload session(s), "
                  f"{checked.project_quotas} project quota(s)",
                  soft_wrap=True, highlight=False)
    for problem in report.problems:
        console.print(f"  {_mark(problem)} [bold]{problem.kind}[/bold]  {escape(problem.message)}", soft_wrap=True,
                      highlight=False)
        style = "green" if problem.repaired else "dim"
        console.print(f"      [{style}]{escape(problem.action)}[/{style}]", soft_wrap=True, highlight=False)
    remaining, repaired = report.remaining, report.repaired
    warnings = [p for p in report.problems if p.severity == "warning"]
    note = f" ({len(warnings)} warning(s) about upload leftovers the server cleans up itself)" if warnings else ""
    if not report.problems or (not remaining and not repaired):
        console.print(f"\n[bold green]Store is clean:[/bold green] every blob and manifest matches its digest{note}.",
                      soft_wrap=True, highlight=False)
    elif not remaining:
        console.print(f"\n[bold green]Repaired {len(repaired)} problem(s);[/bold green] nothing else is wrong. "
                      f"Quarantine: {escape(str(Path(report.data_dir) / 'quarantine'))}{note}.", soft_wrap=True,
                      highlight=False)
    else:
        done = f"repaired {len(repaired)}, " if repaired else ""
        fixable = [p for p in remaining if p.action.startswith("--repair")]
        hint = " Run `moorage fsck --repair` to quarantine what is damaged." if fixable and not report.repair else ""
        if any(p.kind == "broken_image" for p in remaining):
            hint += " Push the broken image(s) again to restore them."
        if any(p.kind == "orphan_blob" and not p.action.startswith("--repair") for p in remaining):
            hint += f" Files newer than {ORPHAN_GRACE_SECONDS // 60} min are left alone until a later run."
        console.print(f"\n[bold red]{done}{len(remaining)} problem(s) remain.[/bold red]{hint}{note}", soft_wrap=True,
                      highlight=False)


def fsck_command(
    data_dir: Annotated[Path | None, typer.Option(help="Data directory (blobs, database). "
                                                  "Env: MOORAGE_DATA_DIR. Default: ~/.local/share/moorage")] = None,
    config: Annotated[Path | None, typer.Option(help="TOML settings file. Env: MOORAGE_CONFIG. "
                                                "Default: <data-dir>/moorage.toml if present")] = None,
    repair: Annotated[bool, typer.Option("--repair", help="Move damaged blobs, stray files and corrupt manifests "
                                         "to <data-dir>/quarantine/ and delete the records that named them, "
                                         "so the next push uploads them again.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON on stdout.")] = False,
) -> None:
    """Verify every blob's digest, every manifest and its references, and the database's view of the store.

    Safe while the server runs. Exit status: 0 clean (or everything found was repaired); 1 problems remain;
    2 the settings lead to no store, or it cannot be read.
    """
    settings = load_settings(data_dir=data_dir, config=config)
    if settings.storage_backend != "filesystem":
        # It reads <data-dir>/blobs: on object storage it would find every blob missing, and --repair would drop
        # every record.
        raise SettingsError("storage_backend: moorage fsck checks blobs on the filesystem store only; the blobs of "
                            "this registry are in object storage (storage_backend = s3)")
    store = open_existing_store(settings)
    try:
        if as_json:
            report = run_fsck(store, settings.data_dir, repair=repair)
        else:
            with Progress(TextColumn("hashing"), BarColumn(), DownloadColumn(binary_units=True), TransferSpeedColumn(),
                          TimeRemainingColumn(), console=Console(stderr=True), transient=True) as bar:
                task = bar.add_task("hashing", total=None)
                report = run_fsck(store, settings.data_dir, repair=repair,
                                  progress=lambda done, total: bar.update(task, completed=done, total=total))
    except (OSError, sqlalchemy.exc.OperationalError) as exc:
        # The check could not finish (the database went away, a directory cannot be listed): nothing it
        # found is trustworthy, so say why and report nothing.
        Console(stderr=True).print(f"[bold red]error:[/] moorage fsck could not finish: "
                                   f"{escape(str(getattr(exc, 'orig', exc)))}", soft_wrap=True, highlight=False)
        raise typer.Exit(code=2) from None
    finally:
        store.dispose()
    if as_json:
        typer.echo(json.dumps(report.to_dict(), indent=2))
    else:
        _print_report(report, Console())
    if not report.ok:
        raise typer.Exit(code=1)


def register(app: typer.Typer) -> None:
    app.command(name="fsck")(fsck_command)
