"""Running an API description against a live moorage with Schemathesis: its examples, coverage and fuzzing
phases, with the checks a test asks for, reporting how many cases ran and every failure.

Generated values alone rarely name anything that exists, so ``World`` makes a project with images (one an
index), a member, a user and a robot, and a hook puts their names and ids into three in four of the cases
meant to be valid (never into a negative case): the fuzzer then reaches the handlers' real work as well as
their refusals.
"""

from __future__ import annotations

import copy
import random
from dataclasses import dataclass, field
from typing import Any

import httpx
import schemathesis
from schemathesis import GenerationMode
from schemathesis.config import HealthCheck, SchemathesisConfig
from schemathesis.engine import events, from_schema

from tests.api.harbor import add_member, make_project, make_robot, make_user, push_image, push_index, unique
from tests.support.moorage import ADMIN_PASSWORD, MoorageServer

PHASES = ["examples", "coverage", "fuzzing"]


@dataclass
class World:
    """Things that exist, for the generated requests to name."""

    project: str
    project_id: int
    user_id: int
    username: str
    member_id: int
    robot_id: int
    references: list[str]

    @classmethod
    def make(cls, server: MoorageServer, admin: httpx.Client) -> World:
        project = make_project(admin, public=True, name=unique("contract"))
        with server.client() as registry:
            push_image(registry, f"{project}/app", "v1")
            push_image(registry, f"{project}/team/deep", "v1")
            index = push_index(registry, f"{project}/multi", [{"platform": {"architecture": "amd64", "os": "linux"}}],
                               "latest")
        user_id, username = make_user(admin)
        member_id = add_member(admin, project, username, 2)
        robot = make_robot(admin, project, ["pull"])
        project_id = admin.get(f"/projects/{project}", headers={"X-Is-Resource-Name": "true"}).json()["project_id"]
        return cls(project, project_id, user_id, username, member_id, robot["id"], ["v1", "latest", index])

    def choices(self) -> dict[str, list[Any]]:
        """Real values for the path parameters of each name."""
        return {"project_name": [self.project], "project_name_or_id": [self.project, str(self.project_id)],
                "repository_name": ["app", "multi", "team%2Fdeep"], "reference": self.references,
                "tag_name": ["v1"], "robot_id": [self.robot_id], "user_id": [self.user_id], "mid": [self.member_id]}

    def bodies(self) -> dict[str, list[dict[str, Any]]]:
        """Real bodies for some operations, by operationId."""
        access = [{"resource": "repository", "action": "pull"}]
        return {
            "createProjectMember": [{"role_id": 3, "member_user": {"username": self.username}}],
            "CreateRobot": [{"name": unique("fuzzbot"), "level": "project", "duration": -1,
                             "permissions": [{"kind": "project", "namespace": self.project, "access": access}]}],
            "createTag": [{"name": "fuzzed"}],
            "updateProject": [{"metadata": {"public": "true"},
                               "cve_allowlist": {"items": [{"cve_id": "CVE-2024-3094"}]}}],
        }


@dataclass
class Outcome:
    cases: int = 0
    failures: list[str] = field(default_factory=list)


def _hooks(schema: Any, world: World) -> None:
    choices = world.choices()
    bodies = world.bodies()
    # One seeded sequence per run: the same cases each time, and no hook state shared between runs.
    rng = random.Random(0)

    def mostly() -> bool:
        return rng.random() < 0.75

    def map_case(context: Any, case: Any) -> Any:
        # Only cases meant to be valid: a negative case must keep what makes it invalid.
        meta = case.meta
        if meta is None or meta.generation.mode != GenerationMode.POSITIVE:
            return case
        if case.path_parameters:
            case.path_parameters = {name: rng.choice(choices[name]) if name in choices and mostly() else value
                                    for name, value in case.path_parameters.items()}
        if case.query and {"q", "sort"} & set(case.query) and mostly():
            # Random q and sort strings are refused (400) before anything is listed; without them it is listed.
            case.query = {k: v for k, v in case.query.items() if k not in ("q", "sort")}
        real = bodies.get(case.operation.definition.raw.get("operationId"), [])
        if real and mostly():
            case.body = copy.deepcopy(rng.choice(real))
        return case

    schema.hook(map_case)


def run(raw: dict[str, Any], server: MoorageServer, world: World, *, checks: list[str],
        max_examples: int) -> Outcome:
    """Run ``raw`` (an OpenAPI or Swagger document) against ``server`` as the admin (Basic auth)."""
    config = SchemathesisConfig()
    project = config.projects.default
    # The hooks swap generated values for real ones, so more of what is generated repeats: not a problem here.
    project.update(base_url=f"{server.url}/api/v2.0", basic_auth=("admin", ADMIN_PASSWORD), workers=1,
                   request_timeout=30, suppress_health_check=[HealthCheck.filter_too_much])
    project.phases.update(phases=PHASES)
    project.checks.update(included_check_names=checks)
    # No example database: every run starts from the same seedless search, and leaves nothing behind.
    project.generation.update(max_examples=max_examples, database="none")
    schema = schemathesis.openapi.from_dict(raw, config=config)
    _hooks(schema, world)
    outcome = Outcome()
    for event in from_schema(schema).execute():
        if isinstance(event, events.ScenarioFinished):
            outcome.cases += len(event.recorder.cases)
            for case_id, results in event.recorder.checks.items():
                for result in results:
                    if result.failure_info is not None:
                        failure = result.failure_info.failure
                        case = event.recorder.cases[case_id].value
                        outcome.failures.append(
                            f"{event.recorder.label} [{result.name}] {failure.title}: {failure.message[:600]} "
                            f"<- {case.method} {case.formatted_path} query={case.query} body={str(case.body)[:2000]}")
        elif isinstance(event, events.NonFatalError):
            outcome.failures.append(f"{event.label}: {event.info.message}")
        elif isinstance(event, events.FatalError):
            outcome.failures.append(f"fatal: {event.exception!r}")
    return outcome
