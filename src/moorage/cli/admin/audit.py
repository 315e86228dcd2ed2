"""``moorage audit list [--project P]``: who pushed, pulled, deleted, or failed to log in."""

from __future__ import annotations

from typing import Annotated

import typer

from moorage.cli.admin.common import (
    CaFileOpt,
    InsecureOpt,
    JsonOpt,
    PasswordStdinOpt,
    ServerOpt,
    UsernameOpt,
    handle_errors,
    open_client,
    print_json,
    print_table,
)

app = typer.Typer(help="Audit logs.", no_args_is_help=True)


@app.command("list")
@handle_errors
def list_(
    project: Annotated[str | None, typer.Option("--project", "-p", help="Only this project's log.")] = None,
    operation: Annotated[str | None, typer.Option("--operation", help="Only this operation (create, delete, "
                                                  "pull, ...).")] = None,
    user: Annotated[str | None, typer.Option("--user", help="Only this user's entries.")] = None,
    resource: Annotated[str | None, typer.Option("--resource", help="Only resources containing this.")] = None,
    limit: Annotated[int, typer.Option("--limit", help="At most this many entries, newest first.", min=1)] = 100,
    as_json: JsonOpt = False,
    server: ServerOpt = None, username: UsernameOpt = None, password_stdin: PasswordStdinOpt = False,
    insecure: InsecureOpt = False, ca_file: CaFileOpt = None,
) -> None:
    """List audit log entries, newest first."""
    filters = []
    if operation:
        filters.append(f"operation={operation}")
    if user:
        filters.append(f"username={user}")
    if resource:
        filters.append(f"resource=~{resource}")
    with open_client(server, username, password_stdin, insecure, ca_file) as client:
        entries = client.list_audit_logs(project=project, q=",".join(filters) or None, limit=limit)
    if as_json:
        print_json(entries)
        return
    print_table(["TIME", "USER", "OPERATION", "TYPE", "RESOURCE"],
                ([e.get("op_time"), e.get("username"), e.get("operation"), e.get("resource_type"),
                  e.get("resource")] for e in entries),
                empty="no audit log entries")


def register(parent: typer.Typer) -> None:
    parent.add_typer(app, name="audit")
