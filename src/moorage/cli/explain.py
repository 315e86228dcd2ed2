"""``moorage explain``: name the real cause of an image pull failure and the command that fixes it."""

from __future__ import annotations

import json
import re
import sys
from typing import Annotated

import typer
from rich.console import Console, Group
from rich.markup import escape
from rich.panel import Panel
from rich.text import Text

from moorage.node.explain import Diagnosis, explain

_CODE = re.compile(r"`([^`]+)`")


def _markup(text: str) -> str:
    # Commands in the catalogue are `quoted`; show them as commands the operator can copy.
    return _CODE.sub(lambda m: f"[bold cyan]{m.group(1)}[/bold cyan]", escape(text))


def _panel(diagnosis: Diagnosis, first: bool) -> Panel:
    parts: list[Text] = [Text.from_markup(f"[bold]{_markup(diagnosis.summary)}[/bold]"), Text("")]
    parts.append(Text.from_markup(f"[dim]Why:[/dim] {_markup(diagnosis.why)}"))
    parts.append(Text(""))
    parts.append(Text.from_markup("[green]Fix:[/green]"))
    parts += [Text.from_markup(f"  {n}. {_markup(step)}") for n, step in enumerate(diagnosis.fix, 1)]
    if diagnosis.evidence:
        parts += [Text(""), Text.from_markup(f"[dim]Matched: {escape(diagnosis.evidence)}[/dim]")]
    style = "red" if not diagnosis.recognised else ("green" if first else "yellow")
    title = diagnosis.cause if first else f"also: {diagnosis.cause}"
    return Panel(Group(*parts), title=f"[bold]{title}[/bold]", title_align="left", border_style=style)


def explain_command(
    message: Annotated[str, typer.Argument(help="The error text: a kubelet event ('Failed to pull image "
                                                "...') or a docker/containerd/CRI-O/podman/skopeo error. "
                                                "'-' reads it from stdin.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the diagnoses as JSON.")] = False,
) -> None:
    """Name the real cause of an ErrImagePull / pull error, and the exact fix.

    Exit status 0 when the cause is recognised, 1 when it is not.
    """
    text = sys.stdin.read() if message == "-" else message
    diagnoses = explain(text)
    recognised = diagnoses[0].recognised
    if as_json:
        typer.echo(json.dumps({"recognised": recognised,
                               "diagnoses": [d.to_dict() for d in diagnoses]}, indent=2))
    else:
        console = Console()
        for index, diagnosis in enumerate(diagnoses):
            console.print(_panel(diagnosis, first=index == 0))
    if not recognised:
        raise typer.Exit(code=1)


def register(app: typer.Typer) -> None:
    app.command(name="explain")(explain_command)
