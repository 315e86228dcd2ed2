"""Failed logins lock out the address that failed, never the account for everyone.

The attack: an anonymous client sending wrong passwords for ``admin`` and for predictable robot names
(``robot$<project>+<name>``) every few minutes kept them refused with 429 from everywhere, and with
them every kubelet pull. Here 127.0.0.2 attacks while 127.0.0.3, the real client, keeps working.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest

from tests.api.harbor import PASSWORD, api, make_project, make_robot, make_user, push_image
from tests.support.moorage import ADMIN_PASSWORD, MoorageServer

LIMIT = 3


def from_address(server: MoorageServer, address: str) -> httpx.Client:
    return httpx.Client(base_url=server.url, transport=httpx.HTTPTransport(local_address=address), timeout=30)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MoorageServer]:
    server = MoorageServer(tmp_path_factory.mktemp("throttle"), workers=2,
                           env={"MOORAGE_LOGIN_MAX_FAILURES": str(LIMIT),
                                "MOORAGE_LOGIN_MAX_FAILURES_PER_ADDRESS": "40"})
    server.start()
    try:
        yield server
    finally:
        server.stop()


def pull(client: httpx.Client, auth: tuple[str, str], repo: str) -> int:
    """What a runtime does: a token for the repository with Basic credentials, then the manifest."""
    r = client.get("/service/token", params={"service": "moorage-registry", "scope": f"repository:{repo}:pull"},
                   auth=auth)
    if r.status_code != 200:
        return r.status_code
    return client.get(f"/v2/{repo}/manifests/v1", headers={
        "Authorization": f"Bearer {r.json()['token']}",
        "Accept": "application/vnd.oci.image.manifest.v1+json"}).status_code


def test_an_attacker_locks_out_only_itself(server: MoorageServer) -> None:
    with api(server) as admin, server.client() as registry:
        project = make_project(admin)
        push_image(registry, f"{project}/app", "v1")
        robot = make_robot(admin, project, ["pull"])
    admin_creds = ("admin", ADMIN_PASSWORD)
    robot_creds = (robot["name"], robot["secret"])
    with from_address(server, "127.0.0.2") as attacker, from_address(server, "127.0.0.3") as node:
        for _ in range(2 * LIMIT):
            attacker.get("/v2/", auth=("admin", "Wrong-Passw0rd1"))
            attacker.get("/service/token", auth=(robot["name"], "guessed-secret"))
        # The attacker's address is locked out of admin, even with the right password...
        assert attacker.get("/v2/", auth=admin_creds).status_code == 429
        # ...while the real client, elsewhere, logs in as admin and pulls with the robot at once.
        assert node.get("/v2/", auth=admin_creds).status_code == 200
        assert pull(node, robot_creds, f"{project}/app") == 200
        # A robot has no account lock at all: its secret is long and random, and a lock would be a weapon.
        assert pull(attacker, robot_creds, f"{project}/app") == 200


def test_failures_from_many_addresses_slow_refusals_down_but_lock_nobody_out(server: MoorageServer) -> None:
    with api(server) as admin:
        _, user = make_user(admin)
    for address in ("127.0.0.4", "127.0.0.5"):
        with from_address(server, address) as attacker:
            for _ in range(LIMIT):
                attacker.get("/v2/", auth=(user, "Wrong-Passw0rd1"))
    with from_address(server, "127.0.0.6") as elsewhere:
        started = time.monotonic()
        assert elsewhere.get("/v2/", auth=(user, "Wrong-Passw0rd1")).status_code == 401
        assert time.monotonic() - started >= 0.5, "a refusal for an account under attack is held back"
        started = time.monotonic()
        assert elsewhere.get("/v2/", auth=(user, PASSWORD)).status_code == 200
        # The right password is never held back: the refusal above waited 4 s (a bound generous enough for
        # Argon2 on a loaded machine, and far below that).
        assert time.monotonic() - started < 2.0


def test_a_success_clears_the_count_of_its_address(server: MoorageServer) -> None:
    with api(server) as admin:
        _, user = make_user(admin)
    with from_address(server, "127.0.0.7") as client:
        for _ in range(3):
            for _ in range(LIMIT - 1):
                assert client.get("/v2/", auth=(user, "Wrong-Passw0rd1")).status_code == 401
            # Without the reset, the second round would reach the limit and be refused.
            assert client.get("/v2/", auth=(user, PASSWORD)).status_code == 200
