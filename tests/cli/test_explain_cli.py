"""``moorage explain`` as an operator runs it: the real CLI in a subprocess, argument or stdin."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src"
MESSAGES = Path(__file__).resolve().parents[1] / "node" / "messages"

SEED_EVENT = (
    'Failed to pull image "192.168.2.250:443/test-1/traefik:2.6.2": rpc error: code = Unknown desc = '
    'failed to pull and unpack image "192.168.2.250:443/test-1/traefik:2.6.2": failed to resolve reference '
    '"192.168.2.250:443/test-1/traefik:2.6.2": failed to do request: Head '
    '"https://192.168.2.250:443/v2/test-1/traefik/manifests/2.6.2": x509: cannot validate certificate for '
    "192.168.2.250 because it doesn't contain any IP SANs"
)


def run_cli(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    # A wide terminal keeps Rich from wrapping a command across lines, so the output can be searched.
    env = {**os.environ, "PYTHONPATH": f"{SRC}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
           "COLUMNS": "250", "NO_COLOR": "1"}
    return subprocess.run([sys.executable, "-m", "moorage.cli.main", *args], input=stdin,
                          capture_output=True, text=True, env=env, timeout=60)


def fixture_message(name: str) -> str:
    lines = (MESSAGES / f"{name}.txt").read_text().splitlines()
    return "\n".join(line for line in lines if not line.startswith("# "))


def test_seed_event_as_argument_names_cause_and_fix() -> None:
    result = run_cli("explain", SEED_EVENT)
    assert result.returncode == 0, result.stderr
    assert "tls-missing-ip-san" in result.stdout
    assert "moorage tls renew --ip 192.168.2.250" in result.stdout
    assert "moorage node-config --runtime containerd --apply" in result.stdout
    assert "imagePullSecret" in result.stdout


def test_message_on_stdin_with_json() -> None:
    result = run_cli("explain", "-", "--json", stdin=fixture_message("skopeo-unauthorized-wrong-creds"))
    assert result.returncode == 0, result.stderr
    body = json.loads(result.stdout)
    assert body["recognised"] is True
    first = body["diagnoses"][0]
    assert first["cause"] == "unauthorized"
    assert first["facts"]["runtime"] == "crio"
    assert first["facts"]["project"] == "lib"
    assert any("moorage pull-secret lib --apply" in step for step in first["fix"])
    assert set(first) == {"cause", "summary", "why", "fix", "evidence", "facts"}


def test_several_causes_are_listed_most_specific_first() -> None:
    result = run_cli("explain", "--json", fixture_message("docker-pull-access-denied"))
    causes = [d["cause"] for d in json.loads(result.stdout)["diagnoses"]]
    assert causes == ["denied", "not-found"]
    rich = run_cli("explain", fixture_message("docker-pull-access-denied"))
    assert rich.stdout.index("denied") < rich.stdout.index("also: not-found")


def test_unrecognised_message_exits_1_with_next_steps() -> None:
    result = run_cli("explain", "something else entirely")
    assert result.returncode == 1
    assert "not-recognised" in result.stdout
    assert "moorage doctor" in result.stdout
    as_json = run_cli("explain", "--json", "something else entirely")
    assert as_json.returncode == 1
    assert json.loads(as_json.stdout)["recognised"] is False


def test_empty_stdin_is_not_recognised() -> None:
    result = run_cli("explain", "-", stdin="")
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
