"""A project maintainer prunes old tags through Harbor's retention API: a policy per project (its id in the
project's ``retention_id``), each rule template, dry runs that report exactly what real runs remove, multi-arch
images kept or removed whole, immutable tags kept, per-repository logs, and a schedule the server runs itself."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from tests.api.harbor import add_member, api, assert_error, make_project, make_user, push_image, push_index
from tests.support.moorage import MoorageServer

DAY = 86400


def engine(server: MoorageServer) -> sa.Engine:
    return sa.create_engine(server.env.get("MOORAGE_DATABASE_URL") or f"sqlite:///{server.data_dir / 'moorage.db'}")


def age(server: MoorageServer, repo: str, digest: str, pushed_days_ago: float,
        pulled_days_ago: float | None = None) -> None:
    """History the test cannot wait for: when an artifact (and its tags) was pushed, and last pulled."""
    now = time.time()
    ids = {"d": digest, "r": repo}
    manifest = "(SELECT m.id FROM manifests m JOIN repositories r ON r.id = m.repository_id " \
               "WHERE r.name = :r AND m.digest = :d)"
    with engine(server).begin() as conn:
        conn.execute(sa.text(f"UPDATE manifests SET created_at = :t, pull_time = :p WHERE id = {manifest}"),
                     {**ids, "t": now - pushed_days_ago * DAY,
                      "p": None if pulled_days_ago is None else now - pulled_days_ago * DAY})
        conn.execute(sa.text(f"UPDATE tags SET updated_at = :t WHERE manifest_id = {manifest}"),
                     {**ids, "t": now - pushed_days_ago * DAY})


def selector(pattern: str, decoration: str = "matches", untagged: bool = False) -> dict[str, str]:
    return {"kind": "doublestar", "decoration": decoration, "pattern": pattern,
            "extras": '{"untagged":true}' if untagged else '{"untagged":false}'}


def rule(template: str, value: int | None = None, tags: str = "**", repos: str = "**",
         untagged: bool = False) -> dict[str, Any]:
    return {"disabled": False, "action": "retain", "template": template,
            "params": {template: value} if value is not None else {},
            "tag_selectors": [selector(tags, untagged=untagged)],
            "scope_selectors": {"repository": [selector(repos, "repoMatches")]}}


def policy(project_id: int, *rules: dict[str, Any], cron: str = "") -> dict[str, Any]:
    return {"algorithm": "or", "rules": list(rules), "trigger": {"kind": "Schedule", "settings": {"cron": cron}},
            "scope": {"level": "project", "ref": project_id}}


def project_id(admin: httpx.Client, name: str) -> int:
    return int(admin.get(f"/projects/{name}").json()["project_id"])


def create_policy(admin: httpx.Client, body: dict[str, Any]) -> int:
    r = admin.post("/retentions", json=body)
    assert r.status_code == 201, r.text
    return int(r.headers["location"].rsplit("/", 1)[1])


def run(admin: httpx.Client, policy_id: int, dry_run: bool) -> dict[str, Any]:
    r = admin.post(f"/retentions/{policy_id}/executions", json={"dry_run": dry_run})
    assert r.status_code == 201, r.text
    execution_id = int(r.headers["location"].rsplit("/", 1)[1])
    deadline = time.monotonic() + 60
    while True:
        runs = {e["id"]: e for e in admin.get(f"/retentions/{policy_id}/executions",
                                              params={"page_size": 100}).json()}
        if runs[execution_id]["status"] != "Running":
            return runs[execution_id]
        assert time.monotonic() < deadline, "the retention run never finished"
        time.sleep(0.1)


def decisions(admin: httpx.Client, policy_id: int, execution: dict[str, Any]) -> dict[str, dict[str, str]]:
    """repository -> {artifact row of the log -> RETAIN / DEL / ERR}."""
    found: dict[str, dict[str, str]] = {}
    tasks = admin.get(f"/retentions/{policy_id}/executions/{execution['id']}/tasks").json()
    for task in tasks:
        text = admin.get(f"/retentions/{policy_id}/executions/{execution['id']}/tasks/{task['id']}").text
        rows = [line.split("|") for line in text.splitlines() if line.startswith("| ") and "Artifact" not in line]
        found[task["repository"]] = {cells[1].strip(): cells[7].strip() for cells in rows}
    return found


def tags_of(admin: httpx.Client, project: str, repo: str) -> set[str]:
    r = admin.get(f"/projects/{project}/repositories/{repo}/artifacts", params={"page_size": 100})
    if r.status_code == 404:
        return set()
    return {t["name"] for a in r.json() for t in a.get("tags") or []}


def test_a_policy_is_created_read_changed_and_deleted_as_harbor_shapes_it(moorage: MoorageServer) -> None:
    with api(moorage) as admin:
        meta = admin.get("/retentions/metadatas").json()
        assert {t["rule_template"] for t in meta["templates"]} == {
            "latestPushedK", "latestPulledN", "nDaysSinceLastPush", "nDaysSinceLastPull", "always"}
        project = make_project(admin)
        pid = project_id(admin, project)
        body = policy(pid, rule("latestPushedK", 3), cron="0 0 0 * * *")
        policy_id = create_policy(admin, body)
        assert admin.get(f"/projects/{project}").json()["metadata"]["retention_id"] == str(policy_id)
        got = admin.get(f"/retentions/{policy_id}").json()
        assert got["id"] == policy_id and got["algorithm"] == "or" and got["scope"] == {"level": "project", "ref": pid}
        assert got["trigger"]["settings"]["cron"] == "0 0 0 * * *"
        assert got["rules"][0]["template"] == "latestPushedK" and got["rules"][0]["params"] == {"latestPushedK": 3}
        assert got["rules"][0]["scope_selectors"]["repository"][0]["decoration"] == "repoMatches"

        assert_error(admin.post("/retentions", json=body), 400, "BAD_REQUEST")  # one policy per project
        assert_error(admin.post("/retentions", json=policy(pid, rule("always"), rule("always"))), 409, "CONFLICT")
        assert_error(admin.post("/retentions", json=policy(pid, rule("keepAll"))), 400, "BAD_REQUEST")
        assert_error(admin.post("/retentions", json=policy(pid, rule("latestPushedK"))), 400, "BAD_REQUEST")
        assert_error(admin.post("/retentions", json=policy(999_999, rule("always"))), 400, "BAD_REQUEST")
        assert_error(admin.post("/retentions", json=policy(pid, *[rule("latestPushedK", n) for n in range(16)])),
                     400, "BAD_REQUEST")
        assert_error(admin.put(f"/retentions/{policy_id}", json=policy(pid, rule("always"), cron="tomorrow")),
                     400, "BAD_REQUEST")

        r = admin.put(f"/retentions/{policy_id}", json=policy(pid, rule("nDaysSinceLastPull", 30, tags="v*")))
        assert r.status_code == 200, r.text
        changed = admin.get(f"/retentions/{policy_id}").json()
        assert changed["rules"][0]["params"] == {"nDaysSinceLastPull": 30}
        assert changed["trigger"]["settings"]["cron"] == ""

        assert admin.delete(f"/retentions/{policy_id}").status_code == 200
        assert "retention_id" not in admin.get(f"/projects/{project}").json()["metadata"]
        assert_error(admin.get(f"/retentions/{policy_id}"), 404, "NOT_FOUND")
        assert_error(admin.get("/retentions/x"), 400, "BAD_REQUEST")
        # The project may have a policy again.
        assert create_policy(admin, body) != policy_id


def test_who_may_see_and_run_a_policy(moorage: MoorageServer) -> None:
    with api(moorage) as admin:
        project = make_project(admin)
        policy_id = create_policy(admin, policy(project_id(admin, project), rule("always")))
        _, guest = make_user(admin)
        add_member(admin, project, guest, 3)
        _, outsider = make_user(admin)
    with api(moorage, auth=None) as anonymous:
        assert_error(anonymous.get(f"/retentions/{policy_id}"), 401, "UNAUTHORIZED")
        assert_error(anonymous.get("/retentions/metadatas"), 401, "UNAUTHORIZED")
    with api(moorage, auth=(guest, "Test-Passw0rd")) as member:
        assert_error(member.get(f"/retentions/{policy_id}"), 403, "FORBIDDEN")
        assert_error(member.post(f"/retentions/{policy_id}/executions", json={"dry_run": True}), 403, "FORBIDDEN")
    with api(moorage, auth=(outsider, "Test-Passw0rd")) as stranger:
        assert_error(stranger.delete(f"/retentions/{policy_id}"), 403, "FORBIDDEN")


@pytest.mark.parametrize(("template", "value", "expected_kept"), [
    ("latestPushedK", 2, {"v3", "v4"}),
    # v1 was pulled yesterday; v4, never pulled, counts as pulled when it was pushed (today).
    ("latestPulledN", 2, {"v1", "v4"}),
    ("nDaysSinceLastPush", 7, {"v3", "v4"}),
    # Pulled within 7 days: v1 (yesterday), v3 and v4 (never pulled, pushed within 7 days).
    ("nDaysSinceLastPull", 7, {"v1", "v3", "v4"}),
    ("always", None, {"v1", "v2", "v3", "v4", "dev"}),
])
def test_each_template_keeps_what_it_says_and_a_dry_run_reports_exactly_what_the_real_run_removes(
        moorage: MoorageServer, template: str, value: int | None, expected_kept: set[str]) -> None:
    with api(moorage) as admin, moorage.client() as registry:
        project = make_project(admin)
        repo = f"{project}/app"
        digests = {tag: push_image(registry, repo, tag) for tag in ("v1", "v2", "v3", "v4")}
        dev = push_image(registry, repo, "dev")
        untagged = push_image(registry, repo, "scratch")
        assert registry.delete(f"/v2/{repo}/manifests/scratch").status_code == 202
        age(moorage, repo, digests["v1"], 40, pulled_days_ago=1)
        age(moorage, repo, digests["v2"], 30, pulled_days_ago=20)
        age(moorage, repo, digests["v3"], 3)
        age(moorage, repo, dev, 20)
        untouched = push_image(registry, f"{project}/other", "v0")  # no rule applies to this repository
        age(moorage, f"{project}/other", untouched, 100)

        policy_id = create_policy(admin, policy(project_id(admin, project), rule(template, value, tags="v*",
                                                                                 repos="app"),
                                                rule("always", tags="dev", repos="app")
                                                if template == "always" else rule("latestPushedK", 0, repos="app")))
        dry = run(admin, policy_id, dry_run=True)
        assert dry["status"] == "Success" and dry["dry_run"] is True and dry["trigger"] == "MANUAL"
        assert tags_of(admin, project, "app") == {"v1", "v2", "v3", "v4", "dev"}, "a dry run deletes nothing"
        planned = decisions(admin, policy_id, dry)
        assert set(planned) == {repo}, "one task per repository a rule applies to"
        kept_tags = {row.split(":")[1] for row, mark in planned[repo].items() if mark == "RETAIN" and ":" in row}
        assert kept_tags == expected_kept
        assert planned[repo][f"{repo}@{untagged}"] == "DEL", "untagged artifacts go unless a rule takes them"

        real = run(admin, policy_id, dry_run=False)
        assert real["status"] == "Success" and real["dry_run"] is False
        assert decisions(admin, policy_id, real) == planned, "the real run did what the dry run reported"
        assert tags_of(admin, project, "app") == expected_kept
        assert registry.get(f"/v2/{repo}/manifests/{untagged}").status_code == 404
        assert tags_of(admin, project, "other") == {"v0"}
        tasks = admin.get(f"/retentions/{policy_id}/executions/{real['id']}/tasks").json()
        assert tasks[0]["total"] == 6 and tasks[0]["retained"] == len(expected_kept)
        assert tasks[0]["status"] == "Success" and tasks[0]["repository"] == repo
        history = admin.get(f"/retentions/{policy_id}/executions", params={"page": 1, "page_size": 1})
        assert history.headers["x-total-count"] == "2" and history.json()[0]["id"] == real["id"]


def test_a_multi_arch_image_is_kept_or_removed_whole(moorage: MoorageServer) -> None:
    with api(moorage) as admin, moorage.client() as registry:
        project = make_project(admin)
        repo = f"{project}/multi"
        old = push_index(registry, repo, [{"platform": {"os": "linux", "architecture": "amd64"}},
                                          {"platform": {"os": "linux", "architecture": "arm64"}}], "v1")
        old_children = [c["digest"] for c in registry.get(
            f"/v2/{repo}/manifests/{old}", headers={"Accept": "application/vnd.oci.image.index.v1+json"}).json()[
            "manifests"]]
        age(moorage, repo, old, 10)
        for child in old_children:
            age(moorage, repo, child, 10)  # children are old too: they stay with their index, not by their age
        new = push_index(registry, repo, [{"platform": {"os": "linux", "architecture": "amd64"}}], "v2")
        new_children = [c["digest"] for c in registry.get(
            f"/v2/{repo}/manifests/{new}", headers={"Accept": "application/vnd.oci.image.index.v1+json"}).json()[
            "manifests"]]
        for child in new_children:
            age(moorage, repo, child, 30)
        policy_id = create_policy(admin, policy(project_id(admin, project), rule("latestPushedK", 1)))
        real = run(admin, policy_id, dry_run=False)
        assert real["status"] == "Success"
        for child in new_children:
            assert registry.get(f"/v2/{repo}/manifests/{child}").status_code == 200, "a kept index keeps its children"
        assert registry.get(f"/v2/{repo}/manifests/v2").status_code == 200
        for gone in (old, *old_children):
            assert registry.get(f"/v2/{repo}/manifests/{gone}").status_code == 404, "a removed index takes its own"


def test_an_immutable_tag_is_kept_and_the_log_says_which_rule(moorage: MoorageServer) -> None:
    with api(moorage) as admin, moorage.client() as registry:
        project = make_project(admin)
        repo = f"{project}/app"
        for tag in ("v1.0", "v2.0"):
            push_image(registry, repo, tag)
        r = admin.post(f"/projects/{project}/immutabletagrules", json={
            "tag_selectors": [selector("v1.*")], "scope_selectors": {"repository": [selector("**", "repoMatches")]}})
        assert r.status_code == 201, r.text
        rule_id = r.headers["location"].rsplit("/", 1)[1]
        policy_id = create_policy(admin, policy(project_id(admin, project), rule("latestPushedK", 0)))
        real = run(admin, policy_id, dry_run=False)
        assert tags_of(admin, project, "app") == {"v1.0"}
        task = admin.get(f"/retentions/{policy_id}/executions/{real['id']}/tasks").json()[0]
        text = admin.get(f"/retentions/{policy_id}/executions/{real['id']}/tasks/{task['id']}").text
        assert f"immutable tag rule {rule_id}" in text


def test_a_stop_is_accepted_and_a_bad_operation_refused(moorage: MoorageServer) -> None:
    with api(moorage) as admin:
        project = make_project(admin)
        policy_id = create_policy(admin, policy(project_id(admin, project), rule("always")))
        done = run(admin, policy_id, dry_run=True)
        url = f"/retentions/{policy_id}/executions/{done['id']}"
        assert admin.patch(url, json={"action": "stop"}).status_code == 200
        assert admin.get(f"/retentions/{policy_id}/executions").json()[0]["status"] == "Success", "finished stays"
        assert_error(admin.patch(url, json={"action": "pause"}), 400, "BAD_REQUEST")
        assert_error(admin.patch(f"/retentions/{policy_id}/executions/999999", json={"action": "stop"}), 404,
                     "NOT_FOUND")
        assert_error(admin.get(f"{url}/tasks/999999"), 404, "NOT_FOUND")


def test_the_server_runs_a_scheduled_policy_itself(moorage: MoorageServer) -> None:
    with api(moorage) as admin, moorage.client() as registry:
        project = make_project(admin)
        repo = f"{project}/nightly"
        for tag in ("a", "b", "c"):
            push_image(registry, repo, tag)
        policy_id = create_policy(admin, policy(project_id(admin, project), rule("latestPushedK", 1),
                                                cron="*/2 * * * * *"))
        deadline = time.monotonic() + 120
        scheduled: list[dict[str, Any]] = []
        while not scheduled or scheduled[-1]["status"] == "Running":
            assert time.monotonic() < deadline, "the schedule never ran"
            time.sleep(0.5)
            scheduled = [e for e in admin.get(f"/retentions/{policy_id}/executions").json()
                         if e["trigger"] == "SCHEDULE"]
        assert scheduled[-1]["status"] == "Success"
        assert len(tags_of(admin, project, "nightly")) == 1
        r = admin.put(f"/retentions/{policy_id}", json=policy(project_id(admin, project), rule("latestPushedK", 1)))
        assert r.status_code == 200
