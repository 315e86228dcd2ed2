"""``moorage doctor``: check, from a node, everything a pull of one image needs; name the first failure."""

from __future__ import annotations

import json
import re
from enum import StrEnum
from pathlib import Path
from typing import Annotated, cast

import typer
from rich.console import Console, Group
from rich.markup import escape
from rich.panel import Panel
from rich.text import Text

from moorage.node.checks.credentials import CredentialInputError
from moorage.node.doctor import STEPS, DoctorOptions, DoctorReport, RuntimeChoice, load_inputs, run_doctor

_CODE = re.compile(r"`([^`]+)`")
_MARKS = {"pass": "[green]✓[/green]", "fail": "[bold red]✗[/bold red]", "skip": "[dim]-[/dim]"}


class RuntimeOption(StrEnum):
    auto = "auto"
    docker = "docker"
    containerd = "containerd"
    crio = "crio"


def _markup(text: str) -> str:
    return _CODE.sub(lambda m: f"[bold cyan]{m.group(1)}[/bold cyan]", escape(text))


def _print_report(report: DoctorReport, console: Console) -> None:
    console.print(f"[bold]moorage doctor[/bold] {escape(report.image)}  [dim]runtime {report.runtime} "
                  f"({escape(report.runtime_reason)}), node root {escape(report.root)}[/dim]", soft_wrap=True)
    done = {step.id: step for step in report.steps}
    for number, (step_id, title) in enumerate(STEPS, 1):
        step = done.get(step_id)
        if step is None:
            console.print(f"  [dim]·  {number}. {escape(title)} (not checked)[/dim]")
            continue
        line = f"  {_MARKS[step.status]}  {number}. {escape(title)}"
        if step.detail:
            line += f"\n       [dim]{escape(step.detail)}[/dim]" if step.status != "fail" else \
                f"\n       {escape(step.detail)}"
        console.print(line, soft_wrap=True)
    for note in dict.fromkeys(report.notes):
        console.print(f"  [yellow]note:[/yellow] {escape(note)}", soft_wrap=True)
    finding = report.finding
    if finding is None:
        skipped = [f"{number}. {title}" for number, (step_id, title) in enumerate(STEPS, 1)
                   if done.get(step_id) is None or done[step_id].status != "pass"]
        if skipped:
            # Honest wording: a skipped check is not a passed one.
            console.print(f"\n[bold green]No problem found:[/bold green] this node can pull the image "
                          f"(not checked: {escape('; '.join(skipped))}).", soft_wrap=True)
        else:
            console.print("\n[bold green]All checks passed:[/bold green] this node can pull the image.")
        return
    parts: list[Text] = [Text.from_markup(f"[bold]{_markup(finding.summary)}[/bold]"), Text(""),
                         Text.from_markup(f"[dim]Why:[/dim] {_markup(finding.why)}"), Text(""),
                         Text.from_markup("[green]Fix:[/green]")]
    parts += [Text.from_markup(f"  {n}. {_markup(step)}") for n, step in enumerate(finding.fix, 1)]
    if finding.evidence:
        parts += [Text(""), Text.from_markup(f"[dim]Seen: {escape(finding.evidence)}[/dim]")]
    console.print(Panel(Group(*parts), title=f"[bold]{finding.cause}[/bold]", title_align="left",
                        border_style="red"))


def doctor_command(
    image: Annotated[str, typer.Argument(help="The image exactly as the pod spec names it, e.g. "
                                              "192.168.2.250:443/test-1/traefik:2.6.2")],
    docker_config: Annotated[Path | None, typer.Option("--docker-config", help="A docker config.json whose "
                                                       "credentials the node would use.")] = None,
    secret: Annotated[Path | None, typer.Option("--secret", help="The pod's pull Secret manifest (YAML or JSON; "
                                                "kubernetes.io/dockerconfigjson or dockercfg).")] = None,
    runtime: Annotated[RuntimeOption, typer.Option(help="Container runtime whose trust store applies; auto "
                                                   "picks from the configuration found under --root.")
                       ] = RuntimeOption.auto,
    root: Annotated[Path, typer.Option(help="Where the node's filesystem (its /etc) is.")] = Path("/"),
    timeout: Annotated[float, typer.Option(help="Seconds to wait for each network step.")] = 5.0,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Name the real cause of ErrImagePull on this node: DNS, TCP, TLS trust and SANs, scheme, /v2/, the
    credential the kubelet would pick, pull permission, the tag — stopping at the first failure.

    Exit status 0 when every check passes, 1 on a finding, 2 on bad usage.
    """
    err = Console(stderr=True)
    if docker_config is not None and secret is not None:
        err.print("moorage doctor: use --docker-config or --secret, not both")
        raise typer.Exit(code=2)
    if timeout <= 0:
        err.print("moorage doctor: --timeout must be positive")
        raise typer.Exit(code=2)
    options = DoctorOptions(image=image, secret=secret, docker_config=docker_config,
                            runtime=cast(RuntimeChoice, runtime.value), root=root.absolute(), timeout=timeout)
    try:
        inputs = load_inputs(options)
    except CredentialInputError as exc:
        err.print(f"moorage doctor: {escape(str(exc))}")
        raise typer.Exit(code=2) from None
    report = run_doctor(options, inputs)
    if as_json:
        typer.echo(json.dumps(report.to_dict(), indent=2))
    else:
        _print_report(report, Console())
    if not report.ok:
        raise typer.Exit(code=1)


def register(app: typer.Typer) -> None:
    app.command(name="doctor")(doctor_command)
