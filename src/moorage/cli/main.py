"""The ``moorage`` command: each command group lives in its own module and registers itself here."""

from __future__ import annotations

import importlib

import typer
from rich.console import Console

from moorage.settings import SettingsError

app = typer.Typer(
    name="moorage",
    help="moorage: a private container registry for Kubernetes, and the tools that get its images onto nodes.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)



@app.callback()
def _root() -> None:
    """moorage: a private container registry for Kubernetes."""


# Each module defines ``register(app: typer.Typer) -> None``.
COMMAND_MODULES = [
    "moorage.cli.serve",
    "moorage.cli.login",
    "moorage.cli.secret",
    "moorage.cli.pull_secret",
    "moorage.cli.explain",
    "moorage.cli.doctor",
    "moorage.cli.fsck",
    "moorage.cli.gc",
    "moorage.cli.migrate_storage",
    "moorage.cli.init",
    "moorage.cli.tls",
    "moorage.cli.node_config",
    "moorage.cli.admin",
    "moorage.cli.webhook",
]

for _name in COMMAND_MODULES:
    importlib.import_module(_name).register(app)


def main() -> None:
    try:
        app()
    except SettingsError as exc:
        # A bad setting is the operator's to fix: say which, where it came from, and nothing else.
        Console(stderr=True).print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()
