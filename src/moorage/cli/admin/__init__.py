"""The admin commands: projects, users, members, robots, repositories, audit, over the Harbor v2.0 API.

Every command is an HTTP client of ``/api/v2.0`` (:mod:`moorage.client.harbor`), so it works against
moorage and against Harbor alike.
"""

from __future__ import annotations

import typer

from moorage.cli.admin import artifacts, audit, members, projects, robots, session, users


def register(app: typer.Typer) -> None:
    for module in (projects, users, members, robots, artifacts, audit, session):
        module.register(app)
