"""Immutable tag rules of a project."""

from __future__ import annotations

from typing import Any

from moorage.api.models.common import Int64, Model


class ImmutableSelector(Model):
    #: ``doublestar``
    kind: str | None = None
    #: ``matches`` / ``excludes`` for tags, ``repoMatches`` / ``repoExcludes`` for repositories.
    decoration: str | None = None
    pattern: str | None = None
    extras: str | None = None


class ImmutableRule(Model):
    id: Int64 | None = None
    priority: Int64 | None = None
    disabled: bool | None = None
    #: ``immutable``
    action: str | None = None
    #: ``immutable_template``
    template: str | None = None
    params: dict[str, Any] | None = None
    tag_selectors: list[ImmutableSelector] | None = None
    #: ``{"repository": [selectors]}``
    scope_selectors: dict[str, list[ImmutableSelector]] | None = None
