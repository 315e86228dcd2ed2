"""The access a request needs, derived in ONE place from its route and method.

GET/HEAD pull, POST/PUT/PATCH push (and pull, as clients check what they push), DELETE delete (but
cancelling an upload only needs push), and a cross-repository mount also pulls from its source.
Handlers never decide this themselves.
"""

from __future__ import annotations

from dataclasses import dataclass

from starlette.requests import Request

from moorage.core.reference import is_name


@dataclass(frozen=True, slots=True)
class Access:
    """One resource and the actions wanted on it, as in a token scope ``type:name:actions``."""

    type: str
    name: str
    actions: tuple[str, ...]
    #: Wanted if granted, but its absence does not refuse the request (a mount's source: without
    #: pull on it the mount quietly becomes an ordinary upload).
    optional: bool = False

    def scope(self) -> str:
        return f"{self.type}:{self.name}:{','.join(self.actions)}"


_METHOD_ACTIONS: dict[str, tuple[str, ...]] = {
    "GET": ("pull",),
    "HEAD": ("pull",),
    "POST": ("pull", "push"),
    "PUT": ("pull", "push"),
    "PATCH": ("pull", "push"),
    "DELETE": ("delete",),
}


def required_access(route: str, request: Request) -> list[Access]:
    """What ``request`` on ``route`` needs. An empty list means: any authenticated caller (``/v2/``)."""
    if route == "base":
        return []
    if route == "catalog":
        return [Access("registry", "catalog", ("*",))]
    name = request.path_params["name"]
    actions = _METHOD_ACTIONS[request.method]
    if route == "upload" and request.method == "DELETE":
        # Cancelling an upload deletes nothing stored: whoever may push may give up on a push of theirs.
        actions = ("push",)
    needed = [Access("repository", name, actions)]
    source = request.query_params.get("from")
    # A source that is no repository name holds nothing to mount: not asked for, so not granted, so the
    # handler opens an ordinary session (and no store is asked about a name it cannot even compare).
    if route == "upload_start" and source and is_name(source) and request.query_params.get("mount"):
        needed.append(Access("repository", source, ("pull",), optional=True))
    return needed
