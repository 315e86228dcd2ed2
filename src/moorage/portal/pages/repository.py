"""A repository: its artifacts, newest first, a page at a time, each with its tags, digest, size, push and
pull times, the platform of each image in an index, and a ``docker pull`` line per tag."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from starlette.responses import Response

from moorage.api import repositories
from moorage.api.base import ApiError
from moorage.api.models.artifacts import Artifact
from moorage.portal.pages.common import project_view, registry_host
from moorage.portal.pages.projects import project_url
from moorage.portal.web import Ctx, page, search_text


@dataclass
class ArtifactView:
    artifact: Artifact
    #: ``docker pull`` lines: one per tag (never the digest when a tag exists, see harbor#12763).
    pulls: list[tuple[str, str]]
    #: "os/arch" of an image, or of each image an index lists.
    platforms: list[str]


def _platforms(artifact: Artifact) -> list[str]:
    found = []
    for reference in artifact.references:
        platform = reference.platform
        if platform and platform.os and platform.architecture:
            found.append(f"{platform.os}/{platform.architecture}" + (f"/{platform.variant}" if platform.variant
                                                                      else ""))
    attrs: dict[str, Any] = artifact.extra_attrs
    if not found and isinstance(attrs.get("os"), str) and isinstance(attrs.get("architecture"), str):
        found.append(f"{attrs['os']}/{attrs['architecture']}")
    return found


def view_of(artifact: Artifact, host: str) -> ArtifactView:
    image = f"{host}/{artifact.repository_name}"
    tags = [t.name for t in artifact.tags or [] if t.name]
    pulls = [(tag, f"docker pull {image}:{tag}") for tag in tags] or [("", f"docker pull {image}@{artifact.digest}")]
    return ArtifactView(artifact, pulls, _platforms(artifact))


@page
async def repository_page(ctx: Ctx) -> Response:
    name, repo = ctx.request.path_params["project"], ctx.request.path_params["repo"]
    view = await project_view(ctx, name)
    path = {"project_name": name, "repository_name": repo}
    repository = await ctx.call(repositories.getRepository, path=path)
    search = search_text(ctx.request, "tag")
    pager = ctx.pager(keep=("tag",))
    query = {**pager.query(), "with_tag": "true", **({"q": f"tags=~{search}"} if search else {})}
    found = await ctx.call(repositories.listArtifacts, path=path, query=query)
    pager.total = found.total
    host = await registry_host(ctx)
    return ctx.render("repository.html", view=view, tab="summary", repository=repository, repo=repo,
                      artifacts=[view_of(a, host) for a in found.items], pager=pager, search=search,
                      short=repository.name.split("/", 1)[-1])


def _back(name: str, repo: str) -> str:
    return project_url(name, "repositories", repo)


@page
async def artifact_delete(ctx: Ctx) -> Response:
    name, repo, digest = ctx.request.path_params["project"], ctx.form.get("repo", ""), ctx.form.get("digest", "")
    work = ctx.call(repositories.deleteArtifact, path={"project_name": name, "repository_name": repo,
                                                       "reference": digest})
    return await ctx.act(_back(name, repo), work, f"Artifact {digest[:19]} deleted.")


@page
async def tag_delete(ctx: Ctx) -> Response:
    name, repo = ctx.request.path_params["project"], ctx.form.get("repo", "")
    digest, tag = ctx.form.get("digest", ""), ctx.form.get("tag", "")
    work = ctx.call(repositories.deleteTag, path={"project_name": name, "repository_name": repo,
                                                  "reference": digest, "tag_name": tag})
    return await ctx.act(_back(name, repo), work, f"Tag {tag} deleted.")


@page
async def repository_delete(ctx: Ctx) -> Response:
    name, repo = ctx.request.path_params["project"], ctx.form.get("repo", "")
    try:
        await ctx.call(repositories.deleteRepository, path={"project_name": name, "repository_name": repo})
    except ApiError as exc:
        ctx.flash(exc.message, "error")
        return ctx.redirect(_back(name, repo))
    ctx.flash(f"Repository {repo} deleted.")
    return ctx.redirect(project_url(name))
