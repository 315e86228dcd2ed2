"""The token service, bearer and Basic auth on /v2/, node credentials, login rate limits."""

from __future__ import annotations

import base64
import json
import sqlite3
import time
from collections.abc import Iterator

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from tests.api.harbor import PASSWORD, add_member, api, make_project, make_robot, make_user, push_image
from tests.support.moorage import MoorageServer

SERVICE = "moorage-registry"


def token(server: MoorageServer, scopes: list[str], auth: tuple[str, str] | None = None) -> dict:
    r = httpx.get(f"{server.url}/service/token", params={"service": SERVICE, "scope": scopes}, auth=auth)
    assert r.status_code == 200, r.text
    return r.json()


def access_of(body: dict) -> dict[str, list[str]]:
    claims = jwt.decode(body["token"], options={"verify_signature": False})
    return {a["name"]: a["actions"] for a in claims["access"]}


@pytest.fixture(scope="module")
def world(moorage: MoorageServer) -> Iterator[dict]:
    with api(moorage) as admin, moorage.client() as registry:
        private, public = make_project(admin), make_project(admin, public=True)
        _, dev = make_user(admin)
        _, guest = make_user(admin)
        add_member(admin, private, dev, 2)
        add_member(admin, private, guest, 3)
        push_image(registry, f"{private}/app", "v1")
        push_image(registry, f"{public}/app", "v1")
        yield {"private": private, "public": public, "dev": dev, "guest": guest}


def test_challenge_on_v2_and_with_scope(moorage: MoorageServer, world: dict) -> None:
    r = httpx.get(f"{moorage.url}/v2/")
    assert r.status_code == 401 and r.json()["errors"][0]["code"] == "UNAUTHORIZED"
    assert r.headers["www-authenticate"] == \
        f'Bearer realm="{moorage.url}/service/token",service="{SERVICE}"'
    r = httpx.get(f"{moorage.url}/v2/{world['private']}/app/manifests/v1")
    assert r.status_code == 401
    assert f'scope="repository:{world["private"]}/app:pull"' in r.headers["www-authenticate"]


def test_token_shape_and_claims(moorage: MoorageServer, world: dict) -> None:
    body = token(moorage, [f"repository:{world['private']}/app:pull,push"], (world["dev"], PASSWORD))
    assert body["token"] == body["access_token"] and body["expires_in"] == 1800 and body["issued_at"].endswith("Z")
    header = jwt.get_unverified_header(body["token"])
    assert header["alg"] == "ES256" and header["kid"].count(":") == 11
    claims = jwt.decode(body["token"], options={"verify_signature": False})
    assert {"iss", "sub", "aud", "exp", "nbf", "iat", "jti", "access"} <= claims.keys()
    assert claims["sub"] == world["dev"] and claims["aud"] == SERVICE


def test_granted_is_requested_intersect_permitted(moorage: MoorageServer, world: dict) -> None:
    p, pub = world["private"], world["public"]
    scopes = [f"repository:{p}/app:pull,push,delete", f"repository:{pub}/app:pull,push"]
    assert access_of(token(moorage, scopes, (world["dev"], PASSWORD))) == {f"{p}/app": ["pull", "push"],
                                                                           f"{pub}/app": ["pull"]}
    assert access_of(token(moorage, scopes, (world["guest"], PASSWORD))) == {f"{p}/app": ["pull"],
                                                                             f"{pub}/app": ["pull"]}
    assert access_of(token(moorage, scopes)) == {f"{p}/app": [], f"{pub}/app": ["pull"]}
    assert access_of(token(moorage, scopes, ("admin", moorage_admin()))) == {
        f"{p}/app": ["pull", "push", "delete"], f"{pub}/app": ["pull", "push"]}


def moorage_admin() -> str:
    from tests.support.moorage import ADMIN_PASSWORD
    return ADMIN_PASSWORD


def test_bearer_use_401_vs_403(moorage: MoorageServer, world: dict) -> None:
    p = world["private"]
    anon = token(moorage, [f"repository:{p}/app:pull"])["token"]
    r = httpx.get(f"{moorage.url}/v2/{p}/app/manifests/v1", headers={"Authorization": f"Bearer {anon}"})
    assert r.status_code == 401 and "www-authenticate" in r.headers
    guest = token(moorage, [f"repository:{p}/app:pull,push"], (world["guest"], PASSWORD))["token"]
    assert httpx.get(f"{moorage.url}/v2/{p}/app/manifests/v1",
                     headers={"Authorization": f"Bearer {guest}"}).status_code == 200
    r = httpx.post(f"{moorage.url}/v2/{p}/app/blobs/uploads/", headers={"Authorization": f"Bearer {guest}"})
    assert r.status_code == 403 and r.json()["errors"][0]["code"] == "DENIED"


def test_basic_on_v2_and_missing_project(moorage: MoorageServer, world: dict) -> None:
    dev = (world["dev"], PASSWORD)
    assert httpx.get(f"{moorage.url}/v2/", auth=dev).status_code == 200
    assert httpx.get(f"{moorage.url}/v2/{world['private']}/app/manifests/v1", auth=dev).status_code == 200
    r = httpx.post(f"{moorage.url}/v2/no-such-project-x/app/blobs/uploads/", auth=("admin", moorage_admin()))
    assert r.status_code == 403 and "project no-such-project-x does not exist" in r.json()["errors"][0]["message"]
    r = httpx.post(f"{moorage.url}/v2/toplevel/blobs/uploads/", auth=("admin", moorage_admin()))
    assert r.status_code == 403 and "every repository lives in a project" in r.json()["errors"][0]["message"]
    r = httpx.get(f"{moorage.url}/v2/", auth=(world["dev"], "Wrong-Passw0rd"))
    assert r.status_code == 401 and r.json()["errors"][0]["code"] == "UNAUTHORIZED"


def _forge(claims: dict, key: object, kid: str, alg: str = "ES256") -> str:
    return jwt.encode(claims, key, algorithm=alg, headers={"kid": kid})  # type: ignore[arg-type]


def test_tampered_forged_expired_and_none_tokens_refused(moorage: MoorageServer, world: dict) -> None:
    p = world["private"]
    url = f"{moorage.url}/v2/{p}/app/manifests/v1"
    good = token(moorage, [f"repository:{p}/app:pull"], (world["guest"], PASSWORD))["token"]
    head, payload, sig = good.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    claims["access"][0]["actions"] = ["pull", "push", "delete"]
    evil = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    kid = jwt.get_unverified_header(good)["kid"]
    now = int(time.time())
    fresh = {**claims, "exp": now + 600, "iat": now, "nbf": now - 5}
    other_key = ec.generate_private_key(ec.SECP256R1())
    none_token = base64.urlsafe_b64encode(b'{"alg":"none","typ":"JWT"}').rstrip(b"=").decode() + "." + evil + "."
    _, real_key = moorage.signing_key()
    for bad in (f"{head}.{evil}.{sig}", _forge(fresh, other_key, kid), none_token,
                _forge({**fresh, "exp": now - 100, "iat": now - 1000, "nbf": now - 1000}, real_key, kid),
                _forge({**fresh, "aud": "someone-else"}, real_key, kid), "not-a-jwt"):
        r = httpx.get(url, headers={"Authorization": f"Bearer {bad}"})
        assert r.status_code == 401, (bad, r.text)
        assert 'error="invalid_token"' in r.headers["www-authenticate"]
    assert httpx.get(url, headers={"Authorization": f"Bearer {_forge(fresh, real_key, kid)}"}).status_code == 200


def test_oauth_post_password_and_refresh(moorage: MoorageServer, world: dict) -> None:
    scope = f"repository:{world['private']}/app:pull"
    r = httpx.post(f"{moorage.url}/service/token", data={
        "grant_type": "password", "username": world["dev"], "password": PASSWORD, "service": SERVICE,
        "client_id": "tests", "access_type": "offline", "scope": scope})
    assert r.status_code == 200, r.text
    body = r.json()
    assert access_of(body) == {f"{world['private']}/app": ["pull"]} and body["refresh_token"]
    r2 = httpx.post(f"{moorage.url}/service/token", data={
        "grant_type": "refresh_token", "refresh_token": body["refresh_token"], "service": SERVICE,
        "client_id": "tests", "scope": scope})
    assert r2.status_code == 200 and access_of(r2.json()) == {f"{world['private']}/app": ["pull"]}
    bad = httpx.post(f"{moorage.url}/service/token", data={"grant_type": "refresh_token", "refresh_token": "x",
                                                            "service": SERVICE, "client_id": "tests"})
    assert bad.status_code == 401 and bad.json()["error"] == "invalid_grant"
    wrong = httpx.post(f"{moorage.url}/service/token", data={"grant_type": "password", "username": world["dev"],
                                                              "password": "nope", "service": SERVICE})
    assert wrong.status_code == 401
    assert httpx.post(f"{moorage.url}/service/token", data={"grant_type": "magic"}).status_code == 400
    assert httpx.get(f"{moorage.url}/service/token", params={"service": "other"}).status_code == 400


def test_robot_permissions_expiry_and_disable(moorage: MoorageServer, world: dict) -> None:
    p = world["private"]
    with api(moorage) as admin:
        puller = make_robot(admin, p, ["pull"])
        creds = (puller["name"], puller["secret"])
        assert access_of(token(moorage, [f"repository:{p}/app:pull,push"], creds)) == {f"{p}/app": ["pull"]}
        assert access_of(token(moorage, [f"repository:{world['public']}/app:pull,push"], creds)) == {
            f"{world['public']}/app": ["pull"]}
        admin.put(f"/robots/{puller['id']}", json={"disable": True})
        assert httpx.get(f"{moorage.url}/service/token", auth=creds).status_code == 401
        expired = make_robot(admin, p, ["pull"])
        with sqlite3.connect(moorage.data_dir / "moorage.db") as db:
            db.execute("UPDATE robots SET expires_at = ? WHERE id = ?", (int(time.time()) - 5, expired["id"]))
        assert httpx.get(f"{moorage.url}/service/token",
                         auth=(expired["name"], expired["secret"])).status_code == 401


def test_node_credentials(moorage: MoorageServer, world: dict) -> None:
    p = world["private"]
    with api(moorage) as admin:
        r = admin.post("/robots", json={"name": f"node-{p}", "level": "system", "duration": -1, "permissions": [
            {"kind": "project", "namespace": p, "access": [{"resource": "repository", "action": "pull"}]}]})
        node = (r.json()["name"], r.json()["secret"])
        dev_robot = make_robot(admin, p, ["pull", "push"])
    url = f"{moorage.url}/api/v2.0/node-credentials"
    r = httpx.post(url, json={"image": f"{moorage.host}/{p}/app:v1", "ttl_seconds": 120}, auth=node)
    assert r.status_code == 200, r.text
    minted = r.json()
    assert minted["username"] == node[0] and minted["expires_at"].endswith("Z")
    short = (minted["username"], minted["password"])
    assert httpx.get(f"{moorage.url}/v2/{p}/app/manifests/v1", auth=short).status_code == 200
    assert access_of(token(moorage, [f"repository:{p}/app:pull,push"], short)) == {f"{p}/app": ["pull"]}
    assert httpx.post(f"{moorage.url}/v2/{p}/app/blobs/uploads/", auth=short).status_code == 403
    assert httpx.post(url, json={"image": f"{p}/app", "ttl_seconds": 120}, auth=short).status_code == 403
    assert httpx.post(url, json={"image": f"{world['public']}/app"}, auth=node).status_code in (200,)
    assert httpx.post(url, json={"image": "noproject", "ttl_seconds": 120}, auth=node).status_code == 400
    assert httpx.post(url, json={"image": f"{p}/app", "ttl_seconds": 1}, auth=node).status_code == 400
    assert httpx.post(url, json={"image": f"{p}/app"}, auth=(world["dev"], PASSWORD)).status_code == 403
    assert httpx.post(url, json={"image": f"{p}/app"}).status_code == 401
    # Expired: a credential whose exp has passed (signed with the real key) is refused.
    kid, real_key = moorage.signing_key()
    claims = jwt.decode(minted["password"], options={"verify_signature": False})
    now = int(time.time())
    stale = jwt.encode({**claims, "exp": now - 60, "iat": now - 300, "nbf": now - 300}, real_key,  # type: ignore[arg-type]
                       algorithm="ES256", headers={"kid": kid})
    assert httpx.get(f"{moorage.url}/v2/{p}/app/manifests/v1", auth=(minted["username"], stale)).status_code == 401
    assert dev_robot["secret"]


def test_failed_logins_are_rate_limited(tmp_path_factory: pytest.TempPathFactory) -> None:
    server = MoorageServer(tmp_path_factory.mktemp("ratelimit"), workers=2,
                           env={"MOORAGE_LOGIN_MAX_FAILURES": "3", "MOORAGE_LOGIN_MAX_FAILURES_PER_ADDRESS": "6"})
    server.start()
    try:
        with api(server) as admin:
            _, user = make_user(admin)
        statuses = [httpx.get(f"{server.url}/v2/", auth=(user, "Wrong-Passw0rd")).status_code for _ in range(5)]
        assert statuses[:3] == [401, 401, 401] and statuses[3:] == [429, 429]
        # The right password is refused too from this address while it is locked out of the account.
        assert httpx.get(f"{server.url}/v2/", auth=(user, PASSWORD)).status_code == 429
        # A sweep across accounts from one address is stopped by the address's own, larger budget;
        # unknown accounts answer exactly like known ones.
        sweep = [httpx.get(f"{server.url}/service/token", auth=(f"nobody{i}", "x")).status_code for i in range(4)]
        assert sweep == [401, 401, 401, 429]
    finally:
        server.stop()
