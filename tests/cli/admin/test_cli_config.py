"""Where the admin CLI gets its server and credentials (flags > environment > profile), on real files."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from moorage.cli.admin.common import parse_size, role_id, split_reference
from moorage.client.config import ConfigError, Connection, Profile, normalize_server, profile_path, resolve


def _profile(path: Path) -> Profile:
    profile = Profile.load(path)
    profile.remember(Connection("https://reg.example:8443", "admin", "s3cret$pw"))
    profile.save()
    return Profile.load(path)


def test_profile_is_private_and_round_trips(tmp_path: Path) -> None:
    path = tmp_path / "cfg" / "moorage" / "cli.json"
    profile = _profile(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert profile.current == "https://reg.example:8443"
    assert profile.servers["https://reg.example:8443"]["password"] == "s3cret$pw"
    assert not list(path.parent.glob(".cli.json.*")), "no temporary file left behind"


def test_flags_beat_environment_beat_profile(tmp_path: Path) -> None:
    profile = _profile(tmp_path / "cli.json")
    from_profile = resolve(env={}, profile=profile)
    assert (from_profile.server, from_profile.username, from_profile.password) == (
        "https://reg.example:8443", "admin", "s3cret$pw")

    env = {"MOORAGE_SERVER": "http://127.0.0.1:5000", "MOORAGE_USERNAME": "ops", "MOORAGE_PASSWORD": "envpw"}
    from_env = resolve(env=env, profile=profile)
    assert (from_env.server, from_env.username, from_env.password) == ("http://127.0.0.1:5000", "ops", "envpw")

    from_flags = resolve(server="https://other:443", username="root", password="flagpw", env=env, profile=profile)
    assert (from_flags.server, from_flags.username, from_flags.password) == ("https://other:443", "root", "flagpw")


def test_a_saved_password_is_never_sent_elsewhere_or_for_someone_else(tmp_path: Path) -> None:
    profile = _profile(tmp_path / "cli.json")
    with pytest.raises(ConfigError, match="no credentials"):
        resolve(server="https://elsewhere.example", env={}, profile=profile)
    with pytest.raises(ConfigError, match="no credentials for ops"):
        resolve(username="ops", env={}, profile=profile)
    same_user = resolve(username="admin", env={}, profile=profile)
    assert same_user.password == "s3cret$pw"


def test_nothing_configured_says_how_to_log_in() -> None:
    with pytest.raises(ConfigError, match="moorage admin login"):
        resolve(env={}, profile=Profile(Path("/nonexistent/cli.json"), None, {}))


def test_password_never_in_repr() -> None:
    assert "s3cret" not in repr(Connection("https://r", "admin", "s3cret"))


def test_server_urls_are_normalized() -> None:
    assert normalize_server("reg.example:8443") == "https://reg.example:8443"
    assert normalize_server("http://127.0.0.1:5000/") == "http://127.0.0.1:5000"
    assert normalize_server("https://reg.example/api/v2.0/") == "https://reg.example"
    with pytest.raises(ConfigError):
        normalize_server("ftp://reg.example")


def test_profile_location(tmp_path: Path) -> None:
    assert profile_path({"HOME": "/home/u"}) == Path("/home/u/.config/moorage/cli.json")
    assert profile_path({"HOME": "/home/u", "XDG_CONFIG_HOME": "/x"}) == Path("/x/moorage/cli.json")
    assert profile_path({"MOORAGE_CLI_CONFIG": str(tmp_path / "p.json")}) == tmp_path / "p.json"


def test_corrupt_profile_is_reported_not_crashed(tmp_path: Path) -> None:
    path = tmp_path / "cli.json"
    path.write_text("{not json")
    with pytest.raises(ConfigError, match="cannot read"):
        Profile.load(path)


def test_argument_parsing_helpers() -> None:
    assert role_id("Developer") == 2 and role_id("limited_guest") == 5 and role_id("4") == 4
    assert parse_size("10GiB") == 10 * 1024**3 and parse_size("500M") == 500 * 1000**2
    assert parse_size("-1") == -1 and parse_size("1024") == 1024
    assert split_reference("p/team/app:v1") == ("p", "team/app", "v1")
    assert split_reference("p/app@sha256:abc") == ("p", "app", "sha256:abc")
    assert split_reference("p/app") == ("p", "app", None)
