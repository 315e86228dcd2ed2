"""``moorage login`` / ``moorage logout``: credentials in docker's config.json or podman's auth.json.

Login checks the credentials against the registry first (the same ``/v2/`` dance docker does), so a
typo never lands in a file that every later pull will silently use.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from moorage.client.auth import Credentials, RegistryAuthError, verify_login
from moorage.kube.dockerconfig import (
    DockerConfigError,
    docker_config_path,
    podman_auth_path,
    remove_credentials,
    server_key,
    store_credentials,
)

AuthfileOpt = Annotated[Path | None, typer.Option(
    "--authfile", help="Credential file to use instead of docker's config.json "
    "($DOCKER_CONFIG/config.json or ~/.docker/config.json).")]
PodmanOpt = Annotated[bool, typer.Option(
    "--podman", help="Use podman's auth.json ($REGISTRY_AUTH_FILE or $XDG_RUNTIME_DIR/containers/auth.json).")]


def _target(authfile: Path | None, podman: bool) -> tuple[Path, str]:
    env = os.environ
    if authfile is not None or podman:
        return podman_auth_path(env, authfile), "podman"
    return docker_config_path(env), "docker"


def _read_password(password: str | None, password_stdin: bool) -> str:
    if password_stdin:
        if password is not None:
            raise typer.BadParameter("--password and --password-stdin are mutually exclusive")
        value = sys.stdin.read()
        # Like docker: drop exactly one trailing newline; everything else (even '$') is the password.
        return value.removesuffix("\n").removesuffix("\r")
    if password is not None:
        typer.echo("WARNING! Using --password via the CLI is insecure (shell history, process list). "
                   "Use --password-stdin.", err=True)
        return password
    if not sys.stdin.isatty():
        raise typer.BadParameter("no password given: use --password-stdin or -p")
    return str(typer.prompt("Password", hide_input=True))


def login(
    registry: Annotated[str, typer.Argument(help="Registry as images name it: HOST[:PORT].")],
    username: Annotated[str, typer.Option("--username", "-u", help="User or robot name (robot$p+name).")],
    password: Annotated[str | None, typer.Option("--password", "-p", help="Password (prefer --password-stdin).")]
    = None,
    password_stdin: Annotated[bool, typer.Option("--password-stdin", help="Read the password from stdin.")]
    = False,
    authfile: AuthfileOpt = None,
    podman: PodmanOpt = False,
    plain_http: Annotated[bool, typer.Option("--plain-http", help="The registry speaks HTTP, not HTTPS.")]
    = False,
    ca_file: Annotated[Path | None, typer.Option("--ca-file", help="CA bundle that signed the registry's "
                                                 "certificate.")] = None,
) -> None:
    """Check credentials against the registry, then save them where docker/podman/kubelet read them."""
    secret = _read_password(password, password_stdin)
    credentials = Credentials(username, secret)
    path, flavor = _target(authfile, podman)
    try:
        key = server_key(registry, "podman" if flavor == "podman" else "docker")
        verify_login(registry, credentials, plain_http=plain_http,
                     ca_file=str(ca_file) if ca_file else None)
    except RegistryAuthError as exc:
        typer.echo(f"Error: login to {registry} failed: {exc}. Nothing was saved.", err=True)
        raise typer.Exit(1) from exc
    except DockerConfigError as exc:
        typer.echo(f"Error: {exc}", err=True)
        raise typer.Exit(2) from exc
    try:
        where = store_credentials(path, key, credentials)
    except DockerConfigError as exc:
        typer.echo(f"Error: credentials are valid but could not be saved: {exc}", err=True)
        raise typer.Exit(1) from exc
    place = str(path) if where == "file" else f"docker-credential-{where} (listed in {path})"
    typer.echo(f"Login Succeeded: {username} @ {key}, saved in {place}")


def logout(
    registry: Annotated[str, typer.Argument(help="Registry: HOST[:PORT].")],
    authfile: AuthfileOpt = None,
    podman: PodmanOpt = False,
) -> None:
    """Remove the saved credentials for a registry (every spelling of its key)."""
    path, flavor = _target(authfile, podman)
    try:
        key = server_key(registry, "podman" if flavor == "podman" else "docker")
        removed = remove_credentials(path, key)
    except DockerConfigError as exc:
        typer.echo(f"Error: {exc}", err=True)
        raise typer.Exit(1) from exc
    if removed:
        typer.echo(f"Removed login credentials for {key} from {path}")
    else:
        typer.echo(f"Not logged in to {key} (nothing in {path})")


def register(app: typer.Typer) -> None:
    app.command()(login)
    app.command()(logout)
