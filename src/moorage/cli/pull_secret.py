"""``moorage pull-secret PROJECT``: a pull-only robot and its Secret, optionally applied to the cluster.

stdout carries only Secret manifests (the one place the robot's secret appears); everything else —
what was created, refreshed, written — goes to stderr, so ``moorage pull-secret p > s.yaml`` is safe.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from moorage.cli.admin.common import (
    CaFileOpt,
    InsecureOpt,
    PasswordStdinOpt,
    ServerOpt,
    UsernameOpt,
    connection,
)
from moorage.client.auth import Credentials, InvalidCredentials, authorize
from moorage.client.config import ConfigError, Connection
from moorage.client.harbor import HarborAPIError, HarborClient, tls_verify
from moorage.kube.pull_secret import (
    PullSecretError,
    Request,
    bare_robot_name,
    default_robot_name,
    default_secret_name,
    registry_host,
)
from moorage.kube.secrets import key_notes, key_warnings, render

KUBE = "Kubernetes"


def _fail(message: str, code: int = 1) -> typer.Exit:
    typer.echo(f"Error: {message}", err=True)
    return typer.Exit(code)


def _say(line: str) -> None:
    typer.echo(line, err=True)


def _verifier(conn: Connection) -> Callable[[Credentials], bool]:
    """Does the registry still accept this credential? (used to reuse a secret instead of refreshing it)."""
    import httpx

    def verify(credentials: Credentials) -> bool:
        with httpx.Client(verify=tls_verify(conn.insecure, conn.ca_file), timeout=30) as http:
            try:
                return authorize(http, conn.server, credentials) is not None
            except InvalidCredentials:
                return False

    return verify


def _emit(manifests: list[dict[str, Any]], output: str) -> None:
    if output == "json":
        doc: Any = manifests[0] if len(manifests) == 1 else {"apiVersion": "v1", "kind": "List", "items": manifests,
                                                              "metadata": {"resourceVersion": ""}}
        sys.stdout.write(json.dumps(doc, indent=4, ensure_ascii=False) + "\n")
    else:
        sys.stdout.write("---\n".join(render(m, "yaml") for m in manifests))
    sys.stdout.flush()


def pull_secret_command(
    project: Annotated[str, typer.Argument(help="Harbor project whose images the pods pull.")],
    name: Annotated[str | None, typer.Option("--name", help="Secret name (default: moorage-PROJECT).")] = None,
    robot: Annotated[str | None, typer.Option("--robot", help="Robot name inside the project (default: "
                                              "pull-SECRETNAME). An existing robot is reused with the secret a "
                                              "Secret already holds; where none can be read, the namespace gets "
                                              "a robot of its own (ROBOT-NAMESPACE): a secret in use is never "
                                              "refreshed without --rotate.")] = None,
    duration: Annotated[int | None, typer.Option("--duration", help="Robot lifetime in days, -1 = never expires "
                                                 "(default: the server's, 30 days in Harbor).")] = None,
    registry: Annotated[str | None, typer.Option("--registry", help="HOST:PORT exactly as images name the "
                                                 "registry (default: from the server URL).")] = None,
    namespace: Annotated[list[str] | None, typer.Option("--namespace", "-n", help="Namespace for the Secret; "
                                                        "repeatable, one Secret each.", rich_help_panel=KUBE)] = None,
    service_account: Annotated[list[str] | None, typer.Option(
        "--service-account", help="With --apply: add the Secret to this service account's imagePullSecrets in "
        "each namespace (repeatable).", rich_help_panel=KUBE)] = None,
    apply: Annotated[bool, typer.Option("--apply", help="Write the Secrets through the kubeconfig (create or "
                                        "update).", rich_help_panel=KUBE)] = False,
    kubeconfig: Annotated[Path | None, typer.Option("--kubeconfig", help="Default: $KUBECONFIG or "
                                                    "~/.kube/config.", rich_help_panel=KUBE)] = None,
    context: Annotated[str | None, typer.Option("--context", help="kubeconfig context (default: current).",
                                                rich_help_panel=KUBE)] = None,
    rotate: Annotated[bool, typer.Option("--rotate", help="Refresh the robot's secret and update every Secret "
                                         "moorage wrote for it (through the kubeconfig), naming each; the one "
                                         "way to change a secret everywhere at once.")] = False,
    output: Annotated[str | None, typer.Option("--output", "-o", help="yaml or json (default: yaml; with --apply "
                                               "or --rotate nothing is printed unless asked).")] = None,
    server: ServerOpt = None, username: UsernameOpt = None, password_stdin: PasswordStdinOpt = False,
    insecure: InsecureOpt = False, ca_file: CaFileOpt = None,
) -> None:
    """Create (or reuse) a pull-only robot on PROJECT and emit, or --apply, its image pull Secret."""
    if output not in (None, "yaml", "json"):
        raise _fail("--output must be yaml or json", 2)
    if service_account and not apply:
        raise _fail("--service-account needs --apply (service accounts are patched in the cluster)", 2)
    try:
        secret_name = name or default_secret_name(project)
        bare = bare_robot_name(robot) if robot else default_robot_name(secret_name)
        conn = connection(server, username, password_stdin, insecure, ca_file)
        request = Request(project=project, secret_name=secret_name, robot=bare,
                          registry=registry or registry_host(conn.server), namespaces=list(namespace or []),
                          service_accounts=list(service_account or []), duration=duration, apply=apply, rotate=rotate)
    except (PullSecretError, ConfigError) as exc:
        raise _fail(str(exc), 2) from None
    for warning in key_warnings(request.registry):
        _say(f"warning: {warning}")
    for note in key_notes(request.registry):
        _say(f"note: {note}")

    from moorage.kube.apply import KubeError, KubeWriter
    from moorage.kube.pull_secret import provision

    cluster = None
    try:
        if apply or rotate:
            cluster = KubeWriter(str(kubeconfig) if kubeconfig else None, context)
            _say(f"cluster: {cluster.server} (context {cluster.context or 'current'})")
        with HarborClient(conn.server, conn.auth, insecure=conn.insecure, ca_file=conn.ca_file) as api:
            outcome = provision(api, cluster, request, _verifier(conn), _say)
    except (PullSecretError, KubeError) as exc:
        raise _fail(str(exc)) from None
    except HarborAPIError as exc:
        raise _fail(str(exc)) from None
    finally:
        if cluster is not None:
            cluster.close()

    if "$" in outcome.robot.name:
        _say(f"note: the username is {outcome.robot.name!r}; its '$' is part of the name (no shell touched it)")
    if output or not (apply or rotate):
        _emit(outcome.manifests, output or "yaml")
        _say("note: the robot's secret appears only in the Secret manifest on stdout; store it as a Secret, "
             "not in a file others can read")
    if not (apply or rotate) and not request.namespaces:
        _say("note: no --namespace: a pull secret only serves pods in its own namespace")


def register(app: typer.Typer) -> None:
    app.command("pull-secret")(pull_secret_command)
