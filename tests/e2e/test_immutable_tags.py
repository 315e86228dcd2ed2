"""Release tags made immutable stay put whatever real client tries: skopeo and docker pushes of other content
under the tag are refused with the rule named, skopeo's delete is refused, and retention keeps them."""

from __future__ import annotations

import secrets

import httpx
import pytest

from tests.api.harbor import api
from tests.support.clients import DockerCli, Skopeo
from tests.support.images import ImageInfo, build_image
from tests.support.moorage import ADMIN_PASSWORD, MoorageServer

CREDS = f"admin:{ADMIN_PASSWORD}"


def make_immutable(moorage: MoorageServer, project: str, pattern: str) -> int:
    with api(moorage) as admin:
        r = admin.post(f"/projects/{project}/immutabletagrules", json={
            "tag_selectors": [{"kind": "doublestar", "decoration": "matches", "pattern": pattern}],
            "scope_selectors": {"repository": [{"kind": "doublestar", "decoration": "repoMatches",
                                                "pattern": "**"}]}})
        assert r.status_code == 201, r.text
        return int(r.headers["location"].rsplit("/", 1)[1])


def digest_of(moorage: MoorageServer, repo: str, tag: str) -> str:
    with moorage.client() as client:
        r = client.head(f"/v2/{repo}/manifests/{tag}", headers={"Accept": "*/*"})
        assert r.status_code == 200
        return r.headers["docker-content-digest"]


def test_skopeo_cannot_overwrite_or_delete_an_immutable_tag(
        moorage: MoorageServer, skopeo: Skopeo, oci_image: ImageInfo, tmp_path_factory: pytest.TempPathFactory) -> None:
    project = moorage.project(f"immutable-{secrets.token_hex(3)}")
    reference = f"{moorage.host}/{project}/app:v1.0"
    skopeo.push(oci_image, reference, creds=CREDS)
    pushed = digest_of(moorage, f"{project}/app", "v1.0")
    rule_id = make_immutable(moorage, project, "v1.*")

    other = build_image(tmp_path_factory.mktemp("other-image"), tag="v1", layers=1, layer_size=1024)
    refused = skopeo.push(other, reference, creds=CREDS, check=False)
    assert not refused.ok
    assert f"immutable tag rule {rule_id}" in refused.output, refused.output
    assert digest_of(moorage, f"{project}/app", "v1.0") == pushed

    skopeo.push(oci_image, reference, creds=CREDS)  # the same content again is no move
    skopeo.push(other, f"{moorage.host}/{project}/app:v2-rc", creds=CREDS)  # no rule holds this tag
    deleted = skopeo.delete(reference, creds=CREDS, check=False)
    assert not deleted.ok and "immutable" in deleted.output
    assert digest_of(moorage, f"{project}/app", "v1.0") == pushed


def test_docker_cannot_push_other_content_under_an_immutable_tag(
        moorage: MoorageServer, skopeo: Skopeo, docker: DockerCli, oci_image: ImageInfo,
        tmp_path_factory: pytest.TempPathFactory) -> None:
    project = moorage.project(f"immutable-{secrets.token_hex(3)}")
    docker.login(moorage.host, "admin", ADMIN_PASSWORD)
    release = f"{moorage.host}/{project}/app:v1.0"
    candidate = f"{moorage.host}/{project}/app:rc"
    skopeo.push(oci_image, release, creds=CREDS)
    other = build_image(tmp_path_factory.mktemp("docker-other"), tag="v1", layers=1, layer_size=1024,
                        flavor="docker")
    skopeo.push(other, candidate, creds=CREDS)
    pushed = digest_of(moorage, f"{project}/app", "v1.0")
    rule_id = make_immutable(moorage, project, "v*")

    docker.pull(candidate)
    docker.tag(candidate, release)
    refused = docker.push(release, check=False)
    assert not refused.ok
    assert "denied" in refused.output and f"immutable tag rule {rule_id}" in refused.output, refused.output
    assert digest_of(moorage, f"{project}/app", "v1.0") == pushed
    with httpx.Client(base_url=moorage.url, auth=("admin", ADMIN_PASSWORD)) as client:
        assert client.delete(f"/v2/{project}/app/manifests/{pushed}").status_code == 403
