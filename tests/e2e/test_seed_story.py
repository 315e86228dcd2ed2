"""The seed story with real clients: a private project per consuming system, a user with a role,
public projects anyone can pull, robots for machines — enforced exactly as docker and skopeo see it."""

from __future__ import annotations

import base64
import json
import sqlite3
import time

import httpx

from tests.api.harbor import PASSWORD, add_member, api, make_project, make_robot, make_user, unique
from tests.support.clients import DockerCli, Skopeo
from tests.support.images import ImageInfo
from tests.support.moorage import ADMIN_PASSWORD, MoorageServer


def test_seed_story(moorage: MoorageServer, docker: DockerCli, skopeo: Skopeo, oci_image: ImageInfo) -> None:
    host = moorage.host
    admin_creds = f"admin:{ADMIN_PASSWORD}"
    with api(moorage) as admin:
        # The admin creates private project test-1 and user lidabai with the Developer role.
        if admin.head("/projects", params={"project_name": "test-1"}).status_code == 404:
            make_project(admin, name="test-1")
        _, lidabai = make_user(admin, unique("lidabai"))
        add_member(admin, "test-1", lidabai, 2)
        _, guest = make_user(admin, unique("guest"))
        add_member(admin, "test-1", guest, 3)
        other = make_project(admin)
        public = make_project(admin, public=True)
        puller = make_robot(admin, "test-1", ["pull"])
        expired = make_robot(admin, "test-1", ["pull"])
        disabled = make_robot(admin, "test-1", ["pull"])
        admin.put(f"/robots/{disabled['id']}", json={"disable": True})
        with sqlite3.connect(moorage.data_dir / "moorage.db") as db:
            db.execute("UPDATE robots SET expires_at = ? WHERE id = ?", (int(time.time()) - 5, expired["id"]))
    skopeo.push(oci_image, f"{host}/test-1/app:v1", creds=admin_creds)
    skopeo.push(oci_image, f"{host}/{public}/app:v1", creds=admin_creds)
    skopeo.push(oci_image, f"{host}/{other}/app:v1", creds=admin_creds)

    # Anonymous: the public project pulls, test-1 is "unauthorized".
    docker.pull(f"{host}/{public}/app:v1")
    refused = docker.pull(f"{host}/test-1/app:v1", check=False)
    assert not refused.ok and "unauthorized" in refused.output.lower(), refused.output

    # lidabai logs in, pulls and pushes in test-1, and cannot read another private project.
    docker.login(host, lidabai, PASSWORD)
    docker.pull(f"{host}/test-1/app:v1")
    docker.tag(f"{host}/test-1/app:v1", f"{host}/test-1/app:v2")
    docker.push(f"{host}/test-1/app:v2")
    docker.pull(f"{host}/test-1/app:v2")
    foreign = docker.pull(f"{host}/{other}/app:v1", check=False)
    assert not foreign.ok
    docker.logout(host)

    # A guest pulls but its push is "denied".
    docker.login(host, guest, PASSWORD)
    docker.pull(f"{host}/test-1/app:v1")
    docker.tag(f"{host}/test-1/app:v1", f"{host}/test-1/app:guest")
    denied = docker.push(f"{host}/test-1/app:guest", check=False)
    assert not denied.ok and "denied" in denied.output.lower(), denied.output
    docker.logout(host)

    # A pull-only project robot: the "$" in its name survives docker login and config.json.
    docker.login(host, puller["name"], puller["secret"])
    auth = json.loads(docker.config_json.read_text())["auths"][host]["auth"]
    assert base64.b64decode(auth).decode().startswith(puller["name"] + ":") and "$" in puller["name"]
    docker.pull(f"{host}/test-1/app:v1")
    docker.tag(f"{host}/test-1/app:v1", f"{host}/test-1/app:robot")
    pushed = docker.push(f"{host}/test-1/app:robot", check=False)
    assert not pushed.ok and "denied" in pushed.output.lower(), pushed.output
    docker.logout(host)

    # Expired and disabled robots cannot log in.
    for robot in (expired, disabled):
        failed = docker.login(host, robot["name"], robot["secret"], check=False)
        assert not failed.ok and "unauthorized" in failed.output.lower(), failed.output

    # skopeo agrees, and a tampered token is refused by the registry.
    skopeo.inspect(f"{host}/test-1/app:v2", creds=f"{lidabai}:{PASSWORD}")
    body = httpx.get(f"{moorage.url}/service/token", auth=(lidabai, PASSWORD),
                     params={"service": "moorage-registry", "scope": "repository:test-1/app:pull"}).json()
    head, payload, signature = body["token"].split(".")
    tampered = f"{head}.{payload}.{signature[:-4]}AAAA"
    r = httpx.get(f"{moorage.url}/v2/test-1/app/manifests/v1", headers={"Authorization": f"Bearer {tampered}"})
    assert r.status_code == 401
