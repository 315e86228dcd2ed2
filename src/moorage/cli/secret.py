"""``moorage secret create``: a correct ``kubernetes.io/dockerconfigjson`` pull Secret in one command."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from moorage.client.auth import Credentials
from moorage.kube.secrets import (
    RegistryAuth,
    SecretError,
    auths_from_docker_config,
    dockerconfigjson,
    key_notes,
    key_warnings,
    pull_secret,
    render,
)

secret_app = typer.Typer(help="Image pull Secrets for Kubernetes.", no_args_is_help=True)


@secret_app.command("create")
def create(
    name: Annotated[str, typer.Argument(help="Secret name, as pods list it in imagePullSecrets.")],
    server: Annotated[str | None, typer.Option("--server", help="Registry exactly as images name it: "
                                               "HOST:PORT (no https://, no path).")] = None,
    username: Annotated[str | None, typer.Option("--username", "-u")] = None,
    password: Annotated[str | None, typer.Option("--password", "-p", help="Prefer --password-stdin.")] = None,
    password_stdin: Annotated[bool, typer.Option("--password-stdin")] = False,
    email: Annotated[str | None, typer.Option("--email")] = None,
    namespace: Annotated[str | None, typer.Option("--namespace", "-n", help="Namespace of the pods that "
                                                  "will use it: a pull secret only serves its own namespace.")]
    = None,
    output: Annotated[str, typer.Option("--output", "-o", help="yaml or json.")] = "yaml",
    from_docker_config: Annotated[Path | None, typer.Option(
        "--from-docker-config", help="Convert an existing docker config.json (inline auths only).")] = None,
    image: Annotated[list[str] | None, typer.Option(
        "--image", help="Image the secret is for; warns when the kubelet would not match it. Repeatable.")]
    = None,
) -> None:
    """Print a pull Secret; its .dockerconfigjson is exactly what kubectl would make."""
    if output not in ("yaml", "json"):
        typer.echo("Error: --output must be yaml or json", err=True)
        raise typer.Exit(2)
    try:
        auths = _auths(server, username, password, password_stdin, email, from_docker_config)
    except SecretError as exc:
        typer.echo(f"Error: {exc}", err=True)
        raise typer.Exit(2) from exc
    for auth in auths:
        warnings = key_warnings(auth.server, image or ())
        for warning in warnings:
            typer.echo(f"warning: {warning}", err=True)
        if not warnings and not image:
            for note in key_notes(auth.server):
                typer.echo(f"note: {note}", err=True)
    if namespace is None:
        typer.echo("note: no --namespace: the Secret goes to the current namespace when applied, and only "
                   "pods in that namespace can use it", err=True)
    secret = pull_secret(name, dockerconfigjson(auths), namespace)
    sys.stdout.write(render(secret, output))


def _auths(server: str | None, username: str | None, password: str | None, password_stdin: bool,
           email: str | None, from_docker_config: Path | None) -> list[RegistryAuth]:
    if from_docker_config is not None:
        if server or username or password or password_stdin:
            raise SecretError("--from-docker-config cannot be combined with --server/--username/--password")
        try:
            text = from_docker_config.read_text(encoding="utf-8")
        except OSError as exc:
            raise SecretError(f"cannot read {from_docker_config}: {exc.strerror}") from exc
        return auths_from_docker_config(text, str(from_docker_config))
    if not server or not username:
        raise SecretError("give --server and --username (or --from-docker-config FILE)")
    if password_stdin:
        if password is not None:
            raise SecretError("--password and --password-stdin are mutually exclusive")
        password = sys.stdin.read().removesuffix("\n").removesuffix("\r")
    if not password:
        raise SecretError("a password is required: --password-stdin or -p")
    return [RegistryAuth(server, Credentials(username, password), email or "")]


def register(app: typer.Typer) -> None:
    app.add_typer(secret_app, name="secret")
