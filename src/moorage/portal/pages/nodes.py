"""The rescue page for nodes that cannot pull: the registry's CA, the ``moorage node-config`` line for each
container runtime, and the ``moorage pull-secret`` line for the project (the seed's story, in a browser)."""

from __future__ import annotations

import shlex

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

from moorage.api import system
from moorage.api.base import NotFound
from moorage.auth import rbac
from moorage.portal.calls import invoke
from moorage.portal.pages.common import project_view, registry_host
from moorage.portal.web import Ctx, page

RUNTIMES = [("containerd", "containerd (Kubernetes nodes, k3s, kind)"), ("docker", "Docker Engine"),
            ("crio", "CRI-O (OpenShift)")]


async def _ca_pem(request: Request, subject: rbac.Subject) -> str | None:
    """The CA nodes must trust, as the API hands it out; None when there is none (plain HTTP)."""
    try:
        answer = await invoke(request, subject, system.getCert)
    except NotFound:
        return None
    return bytes(answer.body).decode()


@page
async def nodes_page(ctx: Ctx) -> Response:
    name = ctx.request.path_params["project"]
    view = await project_view(ctx, name)
    host = await registry_host(ctx)
    ca = await _ca_pem(ctx.request, ctx.subject)
    plain = ctx.auth.settings.plain_http
    scheme = "http" if plain else "https"
    # Our own CA when we have one; plain HTTP must be declared insecure; a certificate someone else issued (TLS
    # ended in front of moorage) is trusted by the node already, or not ours to hand out.
    trust = "--ca-file ca.crt " if ca is not None else "--insecure " if plain else ""
    lines = [(runtime, label, f"moorage node-config --runtime {runtime} --registry {shlex.quote(host)} {trust}"
              "--apply") for runtime, label in RUNTIMES]
    pull_secret = (f"moorage pull-secret {shlex.quote(name)} --server {scheme}://{host} "
                   f"{'--ca-file ca.crt ' if ca else ''}--namespace default --apply")
    return ctx.render("nodes.html", view=view, tab="nodes", ca=ca, host=host, lines=lines, pull_secret=pull_secret)


async def ca_download(request: Request) -> Response:
    """The CA certificate is public: nodes fetch it before anyone has signed in."""
    ca = await _ca_pem(request, rbac.ANONYMOUS)
    if ca is None:
        return PlainTextResponse("this registry serves plain HTTP: there is no CA to trust\n", status_code=404)
    return PlainTextResponse(ca, media_type="application/x-pem-file",
                             headers={"Content-Disposition": 'attachment; filename="ca.crt"'})
