"""Many clients at the same moment, on every metadata store: CI jobs bootstrapping the same project or
account (one creates it, the others are told it exists), and a burst of failed logins (every one
counts). Never a server error."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import httpx

from tests.api.harbor import PASSWORD, api, make_user, unique
from tests.support.moorage import MoorageServer

CALLERS = 8


def _all_at_once(moorage: MoorageServer, path: str, body: dict) -> list[int]:
    def call(_: int) -> int:
        with api(moorage) as admin:
            return admin.post(path, json=body).status_code

    with ThreadPoolExecutor(CALLERS) as pool:
        return sorted(pool.map(call, range(CALLERS)))


def test_a_project_created_by_many_at_once_is_created_once(moorage: MoorageServer) -> None:
    name = unique("race")
    statuses = _all_at_once(moorage, "/projects", {"project_name": name, "metadata": {"public": "false"}})
    assert statuses == [201] + [409] * (CALLERS - 1)
    with api(moorage) as admin:
        assert [p["name"] for p in admin.get("/projects", params={"name": name}).json()] == [name]


def test_a_user_created_by_many_at_once_is_created_once(moorage: MoorageServer) -> None:
    name = unique("race")
    statuses = _all_at_once(moorage, "/users", {"username": name, "password": PASSWORD,
                                                "email": f"{name}@example.com", "realname": name})
    assert statuses == [201] + [409] * (CALLERS - 1)
    assert httpx.get(f"{moorage.url}/api/v2.0/users/current", auth=(name, PASSWORD)).status_code == 200


def test_a_burst_of_failed_logins_counts_every_one(moorage: MoorageServer) -> None:
    with api(moorage) as admin:
        _, user = make_user(admin)
    budget = 10  # failed logins an account is allowed per window (the default)

    def wrong(_: int) -> int:
        return httpx.get(f"{moorage.url}/v2/", auth=(user, "Wrong-Passw0rd")).status_code

    with ThreadPoolExecutor(budget) as pool:
        assert set(pool.map(wrong, range(budget))) == {401}
    # Had two workers counted the same failure twice as one, the account would still be open.
    assert httpx.get(f"{moorage.url}/v2/", auth=(user, PASSWORD)).status_code == 429
