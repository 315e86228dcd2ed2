"""``moorage node-config``: print or write what a node's runtime needs to trust the registry.

The flags are a stable interface (a DaemonSet runs ``moorage node-config --apply`` on every node):
``--runtime``, ``--registry``, one CA source (``--ca-fingerprint`` fetches the CA from the registry and
pins it; ``--ca-file``; ``--data-dir`` on the registry host), ``--apply``, ``--restart``, ``--root``,
``--insecure``, ``--json``. Exit status: 0 done (or nothing to do), 1 could not write or restart, 2 bad
usage or a CA that does not match its fingerprint.
"""

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
from moorage.node.ca_pin import PinError, chain_problem, fetch_pinned_ca
from moorage.node.runtime_config import Runtime, RuntimePlan, apply_plan, plan_runtime_config
from moorage.node.runtimes.activate import activate
from moorage.tls.certs import server_paths


class RuntimeChoice(StrEnum):
    docker = "docker"
    containerd = "containerd"
    crio = "crio"


def _print_human(plan: RuntimePlan, written: list[Path] | None, activated: str | None) -> None:
    console = Console()
    err = Console(stderr=True)
    for warning in plan.warnings:
        err.print(Panel(Text(warning), title="warning", border_style="red"))
    if written is None:
        verb = f"write {len(plan.files)} file(s)"
    else:
        verb = f"wrote {len(written)} file(s)" + (f", {len(plan.files) - len(written)} already up to date"
                                                 if len(written) < len(plan.files) else "")
    console.print(f"[bold]{plan.runtime}[/] trusting [bold]{plan.registry}[/]: {verb}", highlight=False)
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
    if activated is not None:
        console.print(f"\n[bold]{'restarted' if plan.restart_needed else 'reloaded'}:[/] {activated}",
                      highlight=False)
    elif written is not None and not written:
        console.print("\n[bold green]nothing changed, nothing to restart[/]")
    elif plan.restart_needed:
        console.print(f"\n[bold yellow]restart needed:[/] {plan.activate_command} (or run again with --restart)",
                      highlight=False)
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
    ca_fingerprint: Annotated[str | None, typer.Option(
        help="Fetch the CA from the registry (GET /api/v2.0/systeminfo/getcert) and trust it only if its SHA-256 "
             "fingerprint is this one (`moorage serve` prints it): no CA file to copy to each node.")] = None,
    data_dir: Annotated[Path | None, typer.Option(help="Take the CA from <data-dir>/tls/ca.crt "
                                                  "(default when --ca-file is absent).")] = None,
    apply: Annotated[bool, typer.Option("--apply", help="Write the files under --root (an existing runtime "
                                        "config is edited in place, a backup kept beside it).")] = False,
    restart: Annotated[bool, typer.Option("--restart", help="With --apply: when something changed, restart or "
                                          "reload the runtime through systemd (--root / only).")] = False,
    root: Annotated[Path, typer.Option(help="Where the node's filesystem is mounted (a DaemonSet: the host's "
                                           "/etc under /host, --root /host). Files go under it; paths inside them "
                                           "are the node's own (/etc/containerd/certs.d).")] = Path("/"),
    insecure: Annotated[bool, typer.Option("--insecure", help="Skip TLS verification instead of "
                                           "trusting the CA (not recommended; prints why).")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Show (or --apply) exactly the files a node's runtime needs to trust the registry's CA."""
    if restart and not apply:
        raise fail("--restart needs --apply (there is nothing to restart for before the files are written)")
    if sum(x is not None for x in (ca_file, ca_fingerprint, data_dir)) > 1:
        raise fail("give one CA source: --ca-fingerprint, --ca-file or --data-dir")
    ca_pem: str | None = None
    pin_warning: str | None = None
    if not insecure and ca_fingerprint is not None:
        try:
            ca_pem = fetch_pinned_ca(registry, ca_fingerprint)
        except PinError as exc:
            raise fail(str(exc)) from None
        pin_warning = chain_problem(registry, ca_pem)
    elif not insecure:
        ca_path = ca_file or server_paths(resolve_data_dir(data_dir)).ca
        try:
            ca_pem = ca_path.read_text()
        except OSError as exc:
            raise fail(f"cannot read the CA {ca_path}: {exc.strerror}. Pass --ca-fingerprint (printed by `moorage "
                       "serve`), --ca-file (from `moorage tls ca`) or --data-dir.") from None
    try:
        plan = plan_runtime_config(cast(Runtime, runtime.value), registry, ca_pem, insecure=insecure,
                                   root=root.absolute())
    except ValueError as exc:
        raise fail(str(exc)) from None
    if pin_warning:
        plan.warnings.append(pin_warning)
    written: list[Path] | None = None
    if apply:
        try:
            written = apply_plan(plan)
        except OSError as exc:
            raise fail(f"cannot write {exc.filename}: {exc.strerror}", code=1) from None
    activated: str | None = None
    failed_activation: str | None = None
    if restart and written and plan.activate_command:
        outcome = activate(plan.activate_command, plan.root)
        activated, failed_activation = (outcome.message, None) if outcome.ok else (None, outcome.message)
    if as_json:
        document = plan.to_dict()
        document["applied"] = written is not None
        document["changed"] = [str(p) for p in written or []]
        document["activated"] = activated
        sys.stdout.write(json.dumps(document, indent=2) + "\n")
        if plan.warnings:
            for warning in plan.warnings:
                Console(stderr=True).print(f"warning: {warning}", highlight=False)
    else:
        _print_human(plan, written, activated)
    if failed_activation is not None:
        raise fail(f"the files are written, but the runtime was not restarted: {failed_activation}", code=1)


def register(app: typer.Typer) -> None:
    app.command("node-config")(node_config)
