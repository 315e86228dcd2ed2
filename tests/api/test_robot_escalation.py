"""Nobody grants what it does not hold: robots made by robots, project administrators and administrators.

The attack that found this: a system robot limited to one project, holding robot:create, made a system
robot with repository:*, member:* and user:update, which then made a user a system administrator; a
project robot holding only robot:create made one that pushes and adds project administrators.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tests.api.harbor import PASSWORD, add_member, api, assert_error, make_project, make_user, unique
from tests.support.moorage import ADMIN_PASSWORD, MoorageServer


def access(*pairs: str) -> list[dict[str, str]]:
    return [{"resource": p.split(":")[0], "action": p.split(":")[1]} for p in pairs]


def project_perm(namespace: str, *pairs: str) -> dict[str, Any]:
    return {"kind": "project", "namespace": namespace, "access": access(*pairs)}


def system_perm(*pairs: str) -> dict[str, Any]:
    return {"kind": "system", "namespace": "/", "access": access(*pairs)}


@dataclass
class World:
    own: str  # the project every creator has some standing in
    other: str  # a project none of them (but the admin) has anything in
    creators: dict[str, tuple[str, str]]  # kind -> credentials


@pytest.fixture
def world(moorage: MoorageServer) -> Iterator[World]:
    with api(moorage) as admin:
        own, other = make_project(admin), make_project(admin)
        _, project_admin = make_user(admin)
        add_member(admin, own, project_admin, 1)
        # A system robot limited to one project: it may make robots, and pull in `own`.
        system = admin.post("/robots", json={"name": unique("sys"), "level": "system", "duration": -1, "permissions": [
            system_perm("robot:create", "robot:update"), project_perm(own, "repository:pull")]}).json()
        # A project robot that may make and update robots of its project, and pull there.
        project = admin.post("/robots", json={
            "name": unique("bot"), "level": "project", "duration": -1,
            "permissions": [project_perm(own, "robot:create", "robot:update", "robot:read", "repository:pull")]}).json()
        yield World(own, other, {"admin": ("admin", ADMIN_PASSWORD), "projectAdmin": (project_admin, PASSWORD),
                                 "system robot": (system["name"], system["secret"]),
                                 "project robot": (project["name"], project["secret"])})


# What each creator asks for, and whether it holds it. A creator asks at the level it may create at:
# the administrator and the system robot make system robots, the others robots of their project.
LEVEL = {"admin": "system", "system robot": "system", "projectAdmin": "project", "project robot": "project"}
REQUESTS: dict[str, tuple[Any, set[str]]] = {
    # request -> (permissions, the creators that hold them)
    "pull in its project": (lambda w: [project_perm(w.own, "repository:pull")], set(LEVEL)),
    "push in its project": (lambda w: [project_perm(w.own, "repository:push")], {"admin", "projectAdmin"}),
    "repository:* in its project": (lambda w: [project_perm(w.own, "repository:*")], {"admin", "projectAdmin"}),
    "member:create in its project": (lambda w: [project_perm(w.own, "member:create")], {"admin", "projectAdmin"}),
    "robot:create in its project": (lambda w: [project_perm(w.own, "robot:create")],
                                    {"admin", "projectAdmin", "project robot"}),
    "pull in another project": (lambda w: [project_perm(w.other, "repository:pull")], {"admin"}),
    "pull in every project": (lambda w: [project_perm("*", "repository:pull")], {"admin"}),
    "system user:update": (lambda w: [project_perm(w.own, "repository:pull"), system_perm("user:update")],
                           {"admin"}),
    "system project:create": (lambda w: [project_perm(w.own, "repository:pull"), system_perm("project:create")],
                              {"admin"}),
}


@pytest.mark.parametrize("creator", list(LEVEL))
def test_a_creator_grants_only_what_it_holds(moorage: MoorageServer, world: World, creator: str) -> None:
    with httpx.Client(base_url=f"{moorage.url}/api/v2.0", auth=world.creators[creator], timeout=30) as client:
        for request, (permissions, holders) in REQUESTS.items():
            wanted = permissions(world)
            level = LEVEL[creator]
            if level == "project" and any(p["kind"] == "system" or p["namespace"] != world.own for p in wanted):
                level = "system"  # a project robot cannot hold these at all: ask for a system robot instead
            name = unique("made")
            r = client.post("/robots", json={"name": name, "level": level, "duration": -1, "permissions": wanted})
            if creator in holders:
                assert r.status_code == 201, (creator, request, r.text)
            else:
                assert_error(r, 403, "FORBIDDEN")
                listed = httpx.get(f"{moorage.url}/api/v2.0/robots", params={"q": f"name=~{name}"},
                                   auth=("admin", ADMIN_PASSWORD)).json()
                assert listed == [], (creator, request, "a refused robot must not exist")


def test_the_attack_chain_is_refused(moorage: MoorageServer, world: World) -> None:
    system = world.creators["system robot"]
    with httpx.Client(base_url=f"{moorage.url}/api/v2.0", auth=system, timeout=30) as robot:
        r = robot.post("/robots", json={"name": unique("evil"), "level": "system", "duration": -1, "permissions": [
            project_perm(world.own, "repository:*", "member:*"), system_perm("user:update")]})
        assert_error(r, 403, "FORBIDDEN")
        message = r.json()["errors"][0]["message"]
        assert "only grant permissions it holds" in message and "user:update" in message
    # Even a robot that does hold user:update (granted by the administrator) cannot make an administrator.
    with api(moorage) as admin:
        holder = admin.post("/robots", json={"name": unique("users"), "level": "system", "duration": -1,
                                             "permissions": [system_perm("user:update", "user:list")]}).json()
        uid, _ = make_user(admin)
    with httpx.Client(base_url=f"{moorage.url}/api/v2.0", auth=(holder["name"], holder["secret"])) as robot:
        assert_error(robot.put(f"/users/{uid}/sysadmin", json={"sysadmin_flag": True}), 403, "FORBIDDEN")
    with api(moorage) as admin:
        assert admin.get(f"/users/{uid}").json()["sysadmin_flag"] is False


def test_project_robot_cannot_take_over_or_widen_a_stronger_robot(moorage: MoorageServer, world: World) -> None:
    with api(moorage) as admin:
        pusher = admin.post("/robots", json={"name": unique("push"), "level": "project", "duration": -1,
                                             "permissions": [project_perm(world.own, "repository:push",
                                                                          "repository:pull")]}).json()
        puller = admin.post("/robots", json={"name": unique("pull"), "level": "project", "duration": -1,
                                             "permissions": [project_perm(world.own, "repository:pull")]}).json()
    with httpx.Client(base_url=f"{moorage.url}/api/v2.0", auth=world.creators["project robot"]) as robot:
        # Setting a secret is taking the robot over: refused for one stronger than the caller.
        assert_error(robot.patch(f"/robots/{pusher['id']}", json={}), 403, "FORBIDDEN")
        assert robot.patch(f"/robots/{puller['id']}", json={}).status_code == 200
        # Widening a robot it may manage beyond its own rights: refused, and nothing changed.
        widened = [project_perm(world.own, "repository:pull", "repository:push")]
        assert_error(robot.put(f"/robots/{puller['id']}", json={"permissions": widened}), 403, "FORBIDDEN")
    with api(moorage) as admin:
        kept = admin.get(f"/robots/{puller['id']}").json()["permissions"]
        assert [a["action"] for a in kept[0]["access"]] == ["pull"]
        # The pusher's secret still works: the refused refresh did not change it.
        assert httpx.get(f"{moorage.url}/service/token", auth=(pusher["name"], pusher["secret"])).status_code == 200


def test_roles_are_granted_only_by_who_holds_them(moorage: MoorageServer, world: World) -> None:
    with api(moorage) as admin:
        member_manager = admin.post("/robots", json={"name": unique("members"), "level": "project", "duration": -1,
                                                     "permissions": [project_perm(world.own, "member:create",
                                                                                  "member:update", "member:list",
                                                                                  "project:read")]}).json()
        _, someone = make_user(admin)
    with httpx.Client(base_url=f"{moorage.url}/api/v2.0", auth=(member_manager["name"], member_manager["secret"]),
                      headers={"X-Is-Resource-Name": "true"}) as robot:
        for role_id in (1, 2, 4):  # projectAdmin, developer, maintainer: each can push, which the robot cannot
            r = robot.post(f"/projects/{world.own}/members",
                           json={"role_id": role_id, "member_user": {"username": someone}})
            assert_error(r, 403, "FORBIDDEN")
    with api(moorage) as admin:
        members = admin.get(f"/projects/{world.own}/members", headers={"X-Is-Resource-Name": "true"}).json()
        assert someone not in [m["entity_name"] for m in members]
    # A project administrator holds every role of its project, so it may grant each.
    project_admin = world.creators["projectAdmin"]
    with api(moorage, auth=project_admin) as client:
        add_member(client, world.own, someone, 4)
