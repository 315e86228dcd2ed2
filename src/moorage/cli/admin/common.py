"""What every admin command shares: connection options, error reporting, and table/JSON output.

Connection options sit on each command (``moorage project list --server URL``) rather than on the
root, so they read naturally after the command and every command documents them in its ``--help``.
"""

from __future__ import annotations

import functools
import json
import re
import sys
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Annotated, Any, ParamSpec, TypeVar

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from moorage.client.config import ConfigError, Connection, resolve
from moorage.client.harbor import HarborAPIError, HarborClient, HarborUnreachable
from moorage.core.reference import split_image

P = ParamSpec("P")
R = TypeVar("R")

ServerOpt = Annotated[str | None, typer.Option(
    "--server", help="Server URL, e.g. https://registry.example:443 (env MOORAGE_SERVER; default: the server of "
    "the last moorage admin login).", rich_help_panel="Connection")]
UsernameOpt = Annotated[str | None, typer.Option(
    "--username", "-u", help="Admin user (env MOORAGE_USERNAME; default: from moorage admin login).",
    rich_help_panel="Connection")]
PasswordStdinOpt = Annotated[bool, typer.Option(
    "--password-stdin", help="Read the admin password from stdin (else env MOORAGE_PASSWORD or the login profile).",
    rich_help_panel="Connection")]
InsecureOpt = Annotated[bool, typer.Option(
    "--insecure", help="Do not verify the server's TLS certificate.", rich_help_panel="Connection")]
CaFileOpt = Annotated[Path | None, typer.Option(
    "--ca-file", help="CA bundle that signed the server's certificate.", rich_help_panel="Connection")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print the server's JSON instead of a table.")]

ROLES: dict[int, str] = {1: "projectAdmin", 2: "developer", 3: "guest", 4: "maintainer", 5: "limitedGuest"}



def console() -> Console:
    """A console on the current stdout; piped output gets wide lines so names are never cut or wrapped."""
    wide = not sys.stdout.isatty()
    return Console(highlight=False, width=240 if wide else None)


def read_stdin_secret() -> str:
    """Like ``docker login --password-stdin``: exactly one trailing newline is dropped, nothing else."""
    return sys.stdin.read().removesuffix("\n").removesuffix("\r")


def connection(server: str | None = None, username: str | None = None, password_stdin: bool = False,
               insecure: bool = False, ca_file: Path | None = None) -> Connection:
    password = read_stdin_secret() if password_stdin else None
    return resolve(server=server, username=username, password=password, insecure=insecure or None,
                   ca_file=str(ca_file) if ca_file else None)


def open_client(server: str | None = None, username: str | None = None, password_stdin: bool = False,
                insecure: bool = False, ca_file: Path | None = None) -> HarborClient:
    conn = connection(server, username, password_stdin, insecure, ca_file)
    return HarborClient(conn.server, conn.auth, insecure=conn.insecure, ca_file=conn.ca_file)


def fail(message: str, code: int = 1) -> typer.Exit:
    typer.echo(f"Error: {message}", err=True)
    return typer.Exit(code)


def handle_errors(func: Callable[P, R]) -> Callable[P, R]:
    """Turn every expected failure into one line on stderr and a non-zero exit: no tracebacks."""

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return func(*args, **kwargs)
        except HarborUnreachable as exc:
            raise fail(exc.message) from None
        except HarborAPIError as exc:
            if not exc.status:  # no HTTP exchange happened (TLS set-up): the message says it all
                raise fail(exc.message) from None
            hint = " (check the credentials: moorage admin login SERVER)" if exc.status == 401 else ""
            rid = f" [request id {exc.request_id}]" if exc.request_id else ""
            raise fail(f"{exc.message}{hint} ({exc.code}, HTTP {exc.status}){rid}") from None
        except ConfigError as exc:
            raise fail(str(exc), 2) from None
        except OSError as exc:
            raise fail(str(exc)) from None
        except (KeyError, TypeError, ValueError) as exc:
            # A server that is not (quite) Harbor-shaped: say so instead of dumping a traceback.
            raise fail(f"the server's answer was not understood ({type(exc).__name__}: {exc}); "
                       "is --server a moorage or Harbor API?") from None

    return wrapper


def print_json(data: Any) -> None:
    typer.echo(json.dumps(data, indent=2, sort_keys=False))


def cell(value: Any) -> Text:
    """Server strings go in as plain Text: a ``[`` in a name must not be read as Rich markup."""
    if value is None:
        return Text("")
    if isinstance(value, bool):
        return Text("yes" if value else "no")
    return Text(str(value))


def print_table(columns: Sequence[str], rows: Iterable[Sequence[Any]], *, title: str | None = None,
                empty: str = "nothing found") -> None:
    rows = list(rows)
    if not rows:
        typer.echo(empty)
        return
    table = Table(*columns, title=title, show_lines=False, header_style="bold")
    for row in rows:
        table.add_row(*(cell(v) for v in row))
    console().print(table)


def print_fields(pairs: Iterable[tuple[str, Any]]) -> None:
    table = Table(show_header=False, box=None, pad_edge=False)
    table.add_column(style="bold")
    table.add_column()
    for key, value in pairs:
        table.add_row(Text(key), cell(value))
    console().print(table)


def role_id(value: str) -> int:
    """``developer``, ``Developer``, ``limited-guest``, ``project_admin`` or Harbor's id ``1``..``5``."""
    text = value.strip()
    if text.isdigit() and int(text) in ROLES:
        return int(text)
    wanted = re.sub(r"[-_\s]", "", text).lower()
    for number, name in ROLES.items():
        if name.lower() == wanted:
            return number
    names = ", ".join(f"{name} ({number})" for number, name in ROLES.items())
    raise typer.BadParameter(f"unknown role {value!r}; use one of {names}")


def role_name(member: dict[str, Any]) -> str:
    rid = member.get("role_id")
    return ROLES.get(rid, str(member.get("role_name") or rid)) if isinstance(rid, int) else str(
        member.get("role_name") or "")


_SIZE = re.compile(r"^\s*(-?\d+(?:\.\d+)?)\s*([kmgtp]?i?b?)?\s*$", re.IGNORECASE)
_UNITS = {"": 1, "b": 1, "k": 1000, "m": 1000**2, "g": 1000**3, "t": 1000**4, "p": 1000**5,
          "ki": 1024, "mi": 1024**2, "gi": 1024**3, "ti": 1024**4, "pi": 1024**5}


def parse_size(value: str) -> int:
    """Bytes from ``500M``, ``10GiB``, ``1073741824``; ``-1`` means unlimited (Harbor's convention)."""
    match = _SIZE.match(value)
    if not match:
        raise typer.BadParameter(f"{value!r} is not a size: use e.g. 500MiB, 10GiB, 1073741824 or -1 (unlimited)")
    number, unit = float(match.group(1)), (match.group(2) or "").lower().removesuffix("b")
    if number < 0:
        if number != -1:
            raise typer.BadParameter("the only negative size is -1 (unlimited)")
        return -1
    return int(number * _UNITS[unit])


def human_size(value: Any) -> str:
    if not isinstance(value, int) or isinstance(value, bool):
        return "" if value is None else str(value)
    if value < 0:
        return "unlimited"
    size = float(value)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if size < 1024 or unit == "TiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return str(value)


def split_repository(value: str) -> tuple[str, str]:
    """``project/repo[/more]`` -> (project, repo); the repo may itself contain slashes."""
    project, _, repository = value.strip("/").partition("/")
    if not project or not repository:
        raise typer.BadParameter(f"{value!r} is not PROJECT/REPOSITORY")
    return project, repository


def split_reference(value: str) -> tuple[str, str, str | None]:
    """``project/repo:tag`` or ``project/repo@sha256:...`` -> (project, repo, reference or None)."""
    name, tag, digest = split_image(value)
    project, repository = split_repository(name)
    return project, repository, digest or tag or None


def confirm(question: str, yes: bool) -> None:
    """Ask before destroying something; without a terminal, demand ``--yes`` instead of hanging or guessing."""
    if yes:
        return
    if not sys.stdin.isatty():
        raise fail(f"{question} Not confirmed: pass --yes to do it without a prompt.")
    typer.confirm(question, abort=True)
