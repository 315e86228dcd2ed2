"""``moorage node-config``: print or write what a node's runtime needs to trust the registry."""

from __future__ import annotations

import json
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated, cast

import typer
from rich.console import Console
from rich.panel import Panel
from rich.text import Text

from moorage.cli.tls import fail, resolve_data_dir
from moorage.node.runtime_config import Runtime, RuntimePlan, apply_plan, plan_runtime_config
from moorage.tls.certs import server_paths


class RuntimeChoice(StrEnum):
    docker = "docker"
    containerd = "containerd"
    crio = "crio"


def _print_human(plan: RuntimePlan, written: list[Path] | None) -> None:
    console = Console()
    err = Console(stderr=True)
    for warning in plan.warnings:
        err.print(Panel(Text(warning), title="warning", border_style="red"))
    verb = "wrote" if written is not None else "write"
    console.print(f"[bold]{plan.runtime}[/] trusting [bold]{plan.registry}[/]: {verb} "
                  f"{len(plan.files)} file(s)", highlight=False)
    for node_file in plan.files:
        location = str(plan.location(node_file))
        console.print(f"\n[bold cyan]{location}[/] [dim]({node_file.purpose}, mode "
                      f"{node_file.mode:04o})[/]", highlight=False, soft_wrap=True)
        if not node_file.path.endswith(".crt"):
            # soft_wrap: long paths must stay on one line so the content can be copied verbatim.
            console.print(Text(node_file.content), soft_wrap=True)
        else:
            console.print("  [dim](the registry CA certificate, PEM)[/]")
    for note in plan.notes:
        console.print(Text(f"\n- {note}"), soft_wrap=True)
    if plan.restart_needed:
        console.print(f"\n[bold yellow]restart needed:[/] {plan.activate_command}", highlight=False)
    elif plan.activate_command:
        console.print(f"\n[bold]then:[/] {plan.activate_command}", highlight=False)
    else:
        console.print("\n[bold green]no restart needed[/]")
    if written is None:
        console.print("\n(dry run: add --apply to write these files)")


def node_config(
    runtime: Annotated[RuntimeChoice, typer.Option(help="Container runtime on the node.")],
    registry: Annotated[str, typer.Option(help="HOST:PORT exactly as image references spell it.")],
    ca_file: Annotated[Path | None, typer.Option(help="CA certificate (PEM) to trust.")] = None,
    data_dir: Annotated[Path | None, typer.Option(help="Take the CA from <data-dir>/tls/ca.crt "
                                                  "(default when --ca-file is absent).")] = None,
    apply: Annotated[bool, typer.Option("--apply", help="Write the files under --root.")] = False,
    root: Annotated[Path, typer.Option(help="Node filesystem root the files go under.")] = Path("/"),
    insecure: Annotated[bool, typer.Option("--insecure", help="Skip TLS verification instead of "
                                           "trusting the CA (not recommended; prints why).")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Show (or --apply) exactly the files a node's runtime needs to trust the registry's CA."""
    ca_pem: str | None = None
    if not insecure:
        ca_path = ca_file or server_paths(resolve_data_dir(data_dir)).ca
        try:
            ca_pem = ca_path.read_text()
        except OSError as exc:
            raise fail(f"cannot read the CA {ca_path}: {exc.strerror}. Pass --ca-file (from "
                       "`moorage tls ca`) or --data-dir.") from None
    try:
        plan = plan_runtime_config(cast(Runtime, runtime.value), registry, ca_pem, insecure=insecure,
                                   root=root.absolute())
    except ValueError as exc:
        raise fail(str(exc)) from None
    written: list[Path] | None = None
    if apply:
        try:
            written = apply_plan(plan)
        except OSError as exc:
            raise fail(f"cannot write {exc.filename}: {exc.strerror}", code=1) from None
    if as_json:
        document = plan.to_dict()
        document["applied"] = written is not None
        sys.stdout.write(json.dumps(document, indent=2) + "\n")
        if plan.warnings:
            for warning in plan.warnings:
                Console(stderr=True).print(f"warning: {warning}", highlight=False)
        return
    _print_human(plan, written)


def register(app: typer.Typer) -> None:
    app.command("node-config")(node_config)
