"""``moorage secret create`` as a user runs it, compared with kubectl's own output."""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from moorage.client.auth import Credentials
from moorage.kube.dockerconfig import encode_auth

SRC = Path(__file__).resolve().parents[2] / "src"
ROBOT = "robot$test-1+ci"


def run(args: list[str], stdin: str = "", tmp_path: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": f"{SRC}:{os.environ.get('PYTHONPATH', '')}",
           "KUBECONFIG": str((tmp_path or Path("/nonexistent")) / "no-kubeconfig")}
    return subprocess.run(args, input=stdin, capture_output=True, text=True, env=env, timeout=120, check=False)


def moorage(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return run([sys.executable, "-m", "moorage.cli.main", *args], stdin)


def kubectl(*args: str) -> str:
    exe = shutil.which("kubectl")
    if exe is None:
        pytest.fail("kubectl is required (preinstalled, or Debian package kubernetes-client)")
    done = run([exe, *args])
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.mark.parametrize("output", ["json", "yaml"])
def test_output_identical_to_kubectl(output: str) -> None:
    password = "s3cr3t$<&>"
    done = moorage("secret", "create", "harbor-pull-secret", "--server", "192.168.2.250:443", "-u", ROBOT,
                   "--password-stdin", "-n", "apps", "-o", output, stdin=password + "\n")
    assert done.returncode == 0, done.stderr
    theirs = kubectl("create", "secret", "docker-registry", "harbor-pull-secret",
                     "--docker-server=192.168.2.250:443", f"--docker-username={ROBOT}",
                     f"--docker-password={password}", "-n", "apps", "--dry-run=client", "-o", output)
    assert done.stdout == theirs
    secret = json.loads(done.stdout) if output == "json" else yaml.safe_load(done.stdout)
    decoded = json.loads(base64.b64decode(secret["data"][".dockerconfigjson"]))
    assert decoded["auths"]["192.168.2.250:443"]["username"] == ROBOT
    assert "compares ports literally" in done.stderr


def test_email_and_default_namespace_note() -> None:
    done = moorage("secret", "create", "s", "--server", "reg.example:5000", "-u", "lidabai", "-p", "pw",
                   "--email", "ops@example.com", "-o", "json")
    assert done.returncode == 0, done.stderr
    theirs = kubectl("create", "secret", "docker-registry", "s", "--docker-server=reg.example:5000",
                     "--docker-username=lidabai", "--docker-password=pw", "--docker-email=ops@example.com",
                     "--dry-run=client", "-o", "json")
    assert done.stdout == theirs
    assert "only pods in that namespace" in done.stderr


def test_https_server_warns_about_kubelet_key() -> None:
    done = moorage("secret", "create", "s", "--server", "https://192.168.2.250/", "-u", ROBOT, "-p", "pw",
                   "-n", "apps", "--image", "192.168.2.250:443/test-1/traefik:2.6.2")
    assert done.returncode == 0, done.stderr
    assert "would NOT use key '192.168.2.250'" in done.stderr
    assert "--server 192.168.2.250:443" in done.stderr


def test_from_docker_config(tmp_path: Path) -> None:
    cfg = tmp_path / "config.json"
    cfg.write_text(json.dumps({"auths": {"192.168.2.250:443": {"auth": encode_auth(Credentials(ROBOT, "pw"))}},
                               "HttpHeaders": {"X": "y"}}))
    done = moorage("secret", "create", "s", "--from-docker-config", str(cfg), "-n", "apps", "-o", "json")
    assert done.returncode == 0, done.stderr
    secret = json.loads(done.stdout)
    assert secret["type"] == "kubernetes.io/dockerconfigjson"
    decoded = json.loads(base64.b64decode(secret["data"][".dockerconfigjson"]))
    assert decoded == {"auths": {"192.168.2.250:443": {"username": ROBOT, "password": "pw",
                                                       "auth": encode_auth(Credentials(ROBOT, "pw"))}}}


def test_from_docker_config_with_creds_store_refused(tmp_path: Path) -> None:
    cfg = tmp_path / "config.json"
    cfg.write_text(json.dumps({"auths": {"192.168.2.250:443": {}}, "credsStore": "desktop"}))
    done = moorage("secret", "create", "s", "--from-docker-config", str(cfg))
    assert done.returncode == 2
    assert done.stdout == ""
    assert "credsStore 'desktop'" in done.stderr and "--password-stdin" in done.stderr


def test_missing_inputs_exit_2() -> None:
    assert moorage("secret", "create", "s", "-u", "x", "-p", "y").returncode == 2
    assert moorage("secret", "create", "s", "--server", "r:1", "-u", "x").returncode == 2
    assert moorage("secret", "create", "s", "--server", "r:1", "-u", "x", "-p", "y", "-o", "xml").returncode == 2
