"""``moorage admin login|logout`` and ``moorage system info``.

``admin login`` checks the credentials (``GET /users/current``) before saving them, so a typo never
lands in the profile that every later admin command silently uses.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from moorage.cli.admin.common import (
    CaFileOpt,
    InsecureOpt,
    JsonOpt,
    PasswordStdinOpt,
    ServerOpt,
    UsernameOpt,
    connection,
    fail,
    handle_errors,
    print_fields,
    print_json,
    read_stdin_secret,
)
from moorage.client.config import (
    ENV_PASSWORD,
    ConfigError,
    Connection,
    Profile,
    normalize_server,
    profile_path,
    resolve,
)
from moorage.client.harbor import HarborAPIError, HarborClient

admin_app = typer.Typer(help="Log the admin CLI in to a moorage (or Harbor) server.", no_args_is_help=True)
system_app = typer.Typer(help="The server itself.", no_args_is_help=True)


def _password(password_stdin: bool) -> str:
    if password_stdin:
        return read_stdin_secret()
    if os.environ.get(ENV_PASSWORD):
        return os.environ[ENV_PASSWORD]
    if sys.stdin.isatty():
        return str(typer.prompt("Password", hide_input=True))
    raise fail("no password: use --password-stdin (or set MOORAGE_PASSWORD)", 2)


@admin_app.command()
@handle_errors
def login(
    server: Annotated[str, typer.Argument(help="Server URL: https://HOST[:PORT] (http:// for a plain-HTTP server).")],
    username: Annotated[str, typer.Option("--username", "-u", help="Admin username.")] = "admin",
    password_stdin: PasswordStdinOpt = False,
    insecure: InsecureOpt = False,
    ca_file: CaFileOpt = None,
) -> None:
    """Check admin credentials against the server, then save them (mode 0600) for later commands."""
    url = normalize_server(server)
    password = _password(password_stdin)
    ca = str(ca_file.resolve()) if ca_file else None
    with HarborClient(url, (username, password), insecure=insecure, ca_file=ca) as client:
        try:
            me = client.current_user()
        except HarborAPIError as exc:
            if exc.status == 401:
                raise fail(f"login to {url} failed: wrong username or password. Nothing was saved.") from None
            raise
    profile = Profile.load()
    profile.remember(Connection(url, username, password, insecure, ca))
    profile.save()
    typer.echo(f"Logged in to {url} as {me.get('username', username)}; saved in {profile.path}")
    if not me.get("sysadmin_flag"):
        typer.echo(f"Note: {username} is not a system administrator; user and robot commands may be refused.",
                   err=True)


@admin_app.command()
@handle_errors
def logout(
    server: Annotated[str | None, typer.Argument(help="Server URL (default: the current one).")] = None,
) -> None:
    """Forget the saved credentials for a server."""
    path: Path = profile_path()
    profile = Profile.load(path)
    target = normalize_server(server) if server else profile.current
    if not target:
        raise ConfigError(f"not logged in to any server ({path} holds no login)")
    if profile.forget(target):
        profile.save()
        typer.echo(f"Removed the login for {target} from {path}")
    else:
        typer.echo(f"Not logged in to {target} (nothing in {path})")


@system_app.command()
@handle_errors
def info(
    as_json: JsonOpt = False,
    server: ServerOpt = None, username: UsernameOpt = None, password_stdin: PasswordStdinOpt = False,
    insecure: InsecureOpt = False, ca_file: CaFileOpt = None,
) -> None:
    """Version, URLs, auth mode and component health."""
    # Anonymous callers get a shorter systeminfo; credentials are used when there are any.
    conn = connection(server, username, password_stdin, insecure, ca_file) if (
        username or password_stdin) else _optional_connection(server, insecure, ca_file)
    with HarborClient(conn.server, conn.auth, insecure=conn.insecure, ca_file=conn.ca_file) as client:
        system = client.systeminfo()
        health = client.health()
    if as_json:
        print_json({"server": conn.server, "systeminfo": system, "health": health})
        return
    pairs = [("Server", conn.server), ("Version", system.get("harbor_version")),
             ("Registry URL", system.get("registry_url")), ("External URL", system.get("external_url")),
             ("Auth mode", system.get("auth_mode")),
             ("Project creation", system.get("project_creation_restriction")),
             ("Read-only", system.get("read_only")), ("Health", health.get("status"))]
    pairs += [(f"  {c.get('name')}", f"{c.get('status')}{' - ' + str(c['error']) if c.get('error') else ''}")
              for c in health.get("components") or []]
    print_fields(pairs)


def _optional_connection(server: str | None, insecure: bool, ca_file: Path | None) -> Connection:
    return resolve(server=server, insecure=insecure or None, ca_file=str(ca_file) if ca_file else None,
                   need_credentials=False)


def register(parent: typer.Typer) -> None:
    parent.add_typer(admin_app, name="admin")
    parent.add_typer(system_app, name="system")
