"""``moorage repo list``, ``moorage artifact list``, ``moorage tag list|add|delete``: what a project holds."""

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
    print_json,
    print_table,
    split_reference,
    split_repository,
)

repo_app = typer.Typer(help="Repositories of a project.", no_args_is_help=True)
artifact_app = typer.Typer(help="Artifacts (images, indexes) of a repository.", no_args_is_help=True)
tag_app = typer.Typer(help="Tags of a repository's artifacts.", no_args_is_help=True)


def _tags(artifact: dict[str, Any]) -> str:
    return ", ".join(str(t.get("name")) for t in artifact.get("tags") or [])


def _short(digest: Any) -> str:
    text = str(digest or "")
    algorithm, _, hexpart = text.partition(":")
    return f"{algorithm}:{hexpart[:12]}" if hexpart else text


@repo_app.command("list")
@handle_errors
def repo_list(
    project: Annotated[str, typer.Argument(help="Project name.")],
    as_json: JsonOpt = False,
    server: ServerOpt = None, username: UsernameOpt = None, password_stdin: PasswordStdinOpt = False,
    insecure: InsecureOpt = False, ca_file: CaFileOpt = None,
) -> None:
    """List the repositories of a project."""
    with open_client(server, username, password_stdin, insecure, ca_file) as client:
        repositories = client.list_repositories(project)
    if as_json:
        print_json(repositories)
        return
    print_table(["NAME", "ARTIFACTS", "PULLS", "UPDATED"],
                ([r.get("name"), r.get("artifact_count"), r.get("pull_count"), r.get("update_time")]
                 for r in repositories),
                empty=f"project {project} has no repositories")


@repo_app.command("delete")
@handle_errors
def repo_delete(
    repository: Annotated[str, typer.Argument(help="PROJECT/REPOSITORY.")],
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    server: ServerOpt = None, username: UsernameOpt = None, password_stdin: PasswordStdinOpt = False,
    insecure: InsecureOpt = False, ca_file: CaFileOpt = None,
) -> None:
    """Delete a repository with all its artifacts and tags."""
    project, name = split_repository(repository)
    confirm(f"Delete repository {repository} and everything in it?", yes)
    with open_client(server, username, password_stdin, insecure, ca_file) as client:
        client.delete_repository(project, name)
    typer.echo(f"Deleted repository {repository}")


@artifact_app.command("list")
@handle_errors
def artifact_list(
    repository: Annotated[str, typer.Argument(help="PROJECT/REPOSITORY.")],
    as_json: JsonOpt = False,
    server: ServerOpt = None, username: UsernameOpt = None, password_stdin: PasswordStdinOpt = False,
    insecure: InsecureOpt = False, ca_file: CaFileOpt = None,
) -> None:
    """List the artifacts of a repository, with their tags."""
    project, name = split_repository(repository)
    with open_client(server, username, password_stdin, insecure, ca_file) as client:
        artifacts = client.list_artifacts(project, name)
    if as_json:
        print_json(artifacts)
        return
    print_table(["DIGEST", "TAGS", "TYPE", "SIZE", "PUSHED", "PULLED"],
                ([_short(a.get("digest")), _tags(a), a.get("type"), human_size(a.get("size")),
                  a.get("push_time"), a.get("pull_time")] for a in artifacts),
                empty=f"repository {repository} has no artifacts")


@tag_app.command("list")
@handle_errors
def tag_list(
    target: Annotated[str, typer.Argument(help="PROJECT/REPOSITORY (every tag), or PROJECT/REPOSITORY:TAG or "
                                          "@DIGEST (the tags of that artifact).")],
    as_json: JsonOpt = False,
    server: ServerOpt = None, username: UsernameOpt = None, password_stdin: PasswordStdinOpt = False,
    insecure: InsecureOpt = False, ca_file: CaFileOpt = None,
) -> None:
    """List tags."""
    project, name, reference = split_reference(target)
    with open_client(server, username, password_stdin, insecure, ca_file) as client:
        if reference:
            digest = client.get_artifact(project, name, reference).get("digest")
            tags = [{**t, "digest": digest} for t in client.list_tags(project, name, reference)]
        else:
            tags = [{**t, "digest": a.get("digest")} for a in client.list_artifacts(project, name)
                    for t in a.get("tags") or []]
    if as_json:
        print_json(tags)
        return
    print_table(["TAG", "DIGEST", "PUSHED", "PULLED"],
                ([t.get("name"), _short(t.get("digest")), t.get("push_time"), t.get("pull_time")] for t in tags),
                empty=f"{target} has no tags")


@tag_app.command("add")
@handle_errors
def tag_add(
    target: Annotated[str, typer.Argument(help="The artifact: PROJECT/REPOSITORY:TAG or PROJECT/REPOSITORY@DIGEST.")],
    tag: Annotated[str, typer.Argument(help="The new tag.")],
    server: ServerOpt = None, username: UsernameOpt = None, password_stdin: PasswordStdinOpt = False,
    insecure: InsecureOpt = False, ca_file: CaFileOpt = None,
) -> None:
    """Add a tag to an existing artifact."""
    project, name, reference = split_reference(target)
    if not reference:
        raise typer.BadParameter("name the artifact with :TAG or @DIGEST")
    with open_client(server, username, password_stdin, insecure, ca_file) as client:
        client.create_tag(project, name, reference, tag)
    typer.echo(f"Tagged {target} as {project}/{name}:{tag}")


@tag_app.command("delete")
@handle_errors
def tag_delete(
    target: Annotated[str, typer.Argument(help="PROJECT/REPOSITORY:TAG.")],
    server: ServerOpt = None, username: UsernameOpt = None, password_stdin: PasswordStdinOpt = False,
    insecure: InsecureOpt = False, ca_file: CaFileOpt = None,
) -> None:
    """Remove a tag (the artifact stays, reachable by digest)."""
    project, name, reference = split_reference(target)
    if not reference or reference.startswith("sha256:") or ":" in reference:
        raise typer.BadParameter("name the tag as PROJECT/REPOSITORY:TAG")
    with open_client(server, username, password_stdin, insecure, ca_file) as client:
        # Harbor resolves the artifact by the tag itself, so the tag serves as both reference and name.
        client.delete_tag(project, name, reference, reference)
    typer.echo(f"Deleted tag {target}")


def register(parent: typer.Typer) -> None:
    parent.add_typer(repo_app, name="repo")
    parent.add_typer(artifact_app, name="artifact")
    parent.add_typer(tag_app, name="tag")
