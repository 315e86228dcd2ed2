"""``moorage webhook test``: send a sample event to a receiver, as the server would, to check a target before
(or after) it is in a policy: address reachable, signature verified, format understood."""

from __future__ import annotations

import hashlib
import time
import uuid
from pathlib import Path
from typing import Annotated

import httpx
import typer
from rich.console import Console

from moorage.cli.store import NEEDED_TABLES, open_existing_store
from moorage.core import webhooks
from moorage.meta.projects import ProjectModel
from moorage.meta.webhooks import WebhookModel
from moorage.settings import SettingsError, load_settings

webhook_app = typer.Typer(help="Webhooks: check a receiver with a sample event.", no_args_is_help=True)


def sample(event_type: str, project: str) -> dict[str, object]:
    """A made-up event of ``event_type`` in Harbor's default shape."""
    digest = "sha256:" + hashlib.sha256(b"moorage webhook test").hexdigest()
    return webhooks.harbor_payload(event_type, time.time(), "moorage-cli", f"{project}/sample",
                                   [{"digest": digest, "tag": "test"}], repository_created=None, public=False,
                                   registry_host="registry.example")


def _targets(project: str, policy: str | None, data_dir: Path | None, config: Path | None) -> list[webhooks.Target]:
    settings = load_settings(data_dir=data_dir, config=config)
    store = open_existing_store(settings, NEEDED_TABLES | {"webhook_policies"})
    try:
        found = ProjectModel(store).by_name(project)
        if found is None:
            raise SettingsError(f"project: there is no project {project!r}")
        policies = WebhookModel(store).policies(found.id)
    finally:
        store.dispose()
    chosen = [p for p in policies if policy is None or p.name == policy or str(p.id) == policy]
    if not chosen:
        raise SettingsError(f"policy: project {project} has no webhook policy {policy!r}" if policy else
                            f"project: {project} has no webhook policies")
    return [t for p in chosen for t in p.targets]


def test(
    url: Annotated[str | None, typer.Argument(help="Receiver to send to (http:// or https://). Omit with --project "
                                              "to send to the targets of the project's policies.")] = None,
    project: Annotated[str | None, typer.Option(help="Send to the targets of this project's webhook policies "
                                                "(with their secrets and headers), read from the server's store.")]
    = None,
    policy: Annotated[str | None, typer.Option(help="Only this policy of --project (name or id).")] = None,
    event_type: Annotated[str, typer.Option("--event", help="Event type of the sample.")] = webhooks.PUSH_ARTIFACT,
    payload_format: Annotated[str, typer.Option("--format", help="Default or CloudEvents (with URL).")]
    = webhooks.DEFAULT_FORMAT,
    secret: Annotated[str, typer.Option(help="Sign with this secret (with URL). Env: MOORAGE_WEBHOOK_SECRET",
                                        envvar="MOORAGE_WEBHOOK_SECRET")] = "",
    timeout: Annotated[float, typer.Option(help="Seconds to wait for the receiver.")] = 10.0,
    insecure: Annotated[bool, typer.Option("--insecure", help="Do not verify the receiver's certificate.")] = False,
    data_dir: Annotated[Path | None, typer.Option(help="Data directory (with --project). Env: MOORAGE_DATA_DIR")]
    = None,
    config: Annotated[Path | None, typer.Option(help="TOML settings file. Env: MOORAGE_CONFIG")] = None,
) -> None:
    """Send a sample event to URL, or to every target of a project's policies; exit 1 if any receiver did not
    answer 2xx."""
    console = Console(stderr=True)
    if event_type not in webhooks.EVENT_TYPES:
        raise typer.BadParameter(f"must be one of {', '.join(webhooks.EVENT_TYPES)}", param_hint="--event")
    if (url is None) == (project is None):
        raise typer.BadParameter("give a URL or --project (not both)", param_hint="URL")
    if url is not None:
        targets = [webhooks.Target(address=url, payload_format=payload_format, secret=secret,
                                   skip_cert_verify=insecure, timeout=timeout)]
        try:
            webhooks.check_target(targets[0])
        except webhooks.WebhookInvalid as exc:
            raise typer.BadParameter(str(exc), param_hint="URL") from None
    else:
        assert project is not None
        targets = _targets(project, policy, data_dir, config)
    payload = sample(event_type, project or "library")
    failed = 0
    for target in targets:
        event_id = str(uuid.uuid4())
        body, content_type = webhooks.body_for(target, event_id, payload, "/moorage/webhook-test")
        headers = webhooks.headers_for(target, event_id, event_type, body, content_type, time.time())
        try:
            with httpx.Client(verify=not target.skip_cert_verify, follow_redirects=False) as client:
                answer = client.post(target.address, content=body, headers=headers, timeout=target.timeout or timeout)
            ok, detail = 200 <= answer.status_code < 300, f"HTTP {answer.status_code}"
        except httpx.HTTPError as exc:
            ok, detail = False, f"{type(exc).__name__}: {exc}"
        failed += not ok
        signed = " (signed)" if target.secret else ""
        mark = "[green]ok[/]" if ok else "[red]failed[/]"
        console.print(f"{mark} {event_type} {event_id} to {target.address}{signed}: {detail}", highlight=False)
    if failed:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    webhook_app.command("test")(test)
    app.add_typer(webhook_app, name="webhook")
