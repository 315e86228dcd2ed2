"""``moorage project list|create|get|update|delete``."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from moorage.cli.admin.common import (
    CaFileOpt,
    InsecureOpt,
    JsonOpt,
    PasswordStdinOpt,
    ServerOpt,
    UsernameOpt,
    confirm,
    handle_errors,
    human_size,
    open_client,
    parse_size,
    print_fields,
    print_json,
    print_table,
)

app = typer.Typer(help="Projects: every repository lives in one; public projects are pullable by anyone.",
                  no_args_is_help=True)

NameArg = Annotated[str, typer.Argument(help="Project name.")]
StorageLimitOpt = Annotated[str | None, typer.Option(
    "--storage-limit", help="Storage quota: e.g. 10GiB, 500MiB, bytes, or -1 for unlimited.")]


def _public(project: dict[str, Any]) -> bool:
    return str((project.get("metadata") or {}).get("public", "false")).lower() == "true"


@app.command("list")
@handle_errors
def list_(
    name: Annotated[str | None, typer.Option("--name", help="Only projects whose name contains this.")] = None,
    public: Annotated[bool | None, typer.Option("--public/--private", help="Only public / private projects.",
                                                show_default=False)] = None,
    as_json: JsonOpt = False,
    server: ServerOpt = None, username: UsernameOpt = None, password_stdin: PasswordStdinOpt = False,
    insecure: InsecureOpt = False, ca_file: CaFileOpt = None,
) -> None:
    """List projects."""
    with open_client(server, username, password_stdin, insecure, ca_file) as client:
        projects = client.list_projects(name=name, public=public)
    if as_json:
        print_json(projects)
        return
    print_table(["ID", "NAME", "ACCESS", "REPOS", "OWNER", "CREATED"],
                ([p.get("project_id"), p.get("name"), "public" if _public(p) else "private", p.get("repo_count"),
                  p.get("owner_name"), p.get("creation_time")] for p in projects),
                empty="no projects")


@app.command()
@handle_errors
def create(
    name: NameArg,
    public: Annotated[bool, typer.Option("--public/--private", help="Anyone may pull from a public project.")]
    = False,
    storage_limit: StorageLimitOpt = None,
    as_json: JsonOpt = False,
    server: ServerOpt = None, username: UsernameOpt = None, password_stdin: PasswordStdinOpt = False,
    insecure: InsecureOpt = False, ca_file: CaFileOpt = None,
) -> None:
    """Create a project (private unless --public)."""
    limit = parse_size(storage_limit) if storage_limit is not None else None
    with open_client(server, username, password_stdin, insecure, ca_file) as client:
        project = client.create_project(name, public=public, storage_limit=limit)
    if as_json:
        print_json(project)
        return
    typer.echo(f"Created {'public' if _public(project) else 'private'} project {project.get('name', name)} "
               f"(id {project.get('project_id')})")


@app.command()
@handle_errors
def get(
    name: NameArg,
    as_json: JsonOpt = False,
    server: ServerOpt = None, username: UsernameOpt = None, password_stdin: PasswordStdinOpt = False,
    insecure: InsecureOpt = False, ca_file: CaFileOpt = None,
) -> None:
    """Show one project."""
    with open_client(server, username, password_stdin, insecure, ca_file) as client:
        project = client.get_project(name)
    if as_json:
        print_json(project)
        return
    metadata = project.get("metadata") or {}
    print_fields([
        ("Name", project.get("name")), ("ID", project.get("project_id")),
        ("Access", "public" if _public(project) else "private"), ("Owner", project.get("owner_name")),
        ("Repositories", project.get("repo_count")), ("Created", project.get("creation_time")),
        ("Updated", project.get("update_time")),
        *((f"metadata.{k}", v) for k, v in sorted(metadata.items()) if k != "public"),
    ])


@app.command()
@handle_errors
def update(
    name: NameArg,
    public: Annotated[bool | None, typer.Option("--public/--private", help="Make the project public or private.",
                                                show_default=False)] = None,
    storage_limit: StorageLimitOpt = None,
    server: ServerOpt = None, username: UsernameOpt = None, password_stdin: PasswordStdinOpt = False,
    insecure: InsecureOpt = False, ca_file: CaFileOpt = None,
) -> None:
    """Change a project's access or storage limit."""
    if public is None and storage_limit is None:
        raise typer.BadParameter("nothing to change: give --public/--private and/or --storage-limit")
    limit = parse_size(storage_limit) if storage_limit is not None else None
    with open_client(server, username, password_stdin, insecure, ca_file) as client:
        client.update_project(name, public=public, storage_limit=limit)
    changes = []
    if public is not None:
        changes.append("public" if public else "private")
    if limit is not None:
        changes.append(f"storage limit {human_size(limit)}")
    typer.echo(f"Updated project {name}: {', '.join(changes)}")


@app.command()
@handle_errors
def delete(
    name: NameArg,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    server: ServerOpt = None, username: UsernameOpt = None, password_stdin: PasswordStdinOpt = False,
    insecure: InsecureOpt = False, ca_file: CaFileOpt = None,
) -> None:
    """Delete a project (the server refuses while it still holds repositories)."""
    confirm(f"Delete project {name}?", yes)
    with open_client(server, username, password_stdin, insecure, ca_file) as client:
        client.delete_project(name)
    typer.echo(f"Deleted project {name}")


def register(parent: typer.Typer) -> None:
    parent.add_typer(app, name="project")
