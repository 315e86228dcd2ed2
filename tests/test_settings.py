"""Settings come from defaults, then the TOML file, then MOORAGE_* variables, then flags; a bad value
is named with where it came from, never echoed."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from moorage.settings import SettingsError, load_settings


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in list(os.environ):
        if name.upper().startswith("MOORAGE_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))


def test_defaults_keep_everything_under_one_data_directory(tmp_path: Path) -> None:
    settings = load_settings()
    assert settings.data_dir == tmp_path / "xdg" / "moorage"
    assert settings.database == f"sqlite:///{tmp_path / 'xdg' / 'moorage' / 'moorage.db'}"
    assert (settings.listen, settings.plain_http, settings.auth_enabled) == ("127.0.0.1:5000", False, True)


def test_the_file_then_the_environment_then_flags(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "moorage.toml").write_text('listen = "127.0.0.1:6000"\nworkers = 3\ntoken_lifetime_minutes = 5\n'
                                       'tls_ips = ["10.0.0.1"]\n')
    from_file = load_settings(data_dir=data)
    assert (from_file.listen, from_file.workers, from_file.token_lifetime_minutes) == ("127.0.0.1:6000", 3, 5)
    assert from_file.tls_ips == ["10.0.0.1"]

    monkeypatch.setenv("MOORAGE_WORKERS", "4")
    monkeypatch.setenv("moorage_auth_enabled", "false")  # names in any case, as before
    monkeypatch.setenv("MOORAGE_TLS_IPS", '["192.168.2.250", "10.0.0.2"]')
    from_env = load_settings(data_dir=data)
    assert (from_env.workers, from_env.auth_enabled, from_env.listen) == (4, False, "127.0.0.1:6000")
    assert from_env.tls_ips == ["192.168.2.250", "10.0.0.2"]

    flagged = load_settings(data_dir=data, workers=1, listen=None)
    assert (flagged.workers, flagged.listen) == (1, "127.0.0.1:6000")


def test_the_data_directory_and_config_file_may_come_from_the_environment(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "elsewhere.toml"
    config.write_text('public_url = "https://registry.example"\n')
    monkeypatch.setenv("MOORAGE_DATA_DIR", str(tmp_path / "d"))
    monkeypatch.setenv("MOORAGE_CONFIG", str(config))
    settings = load_settings()
    assert (settings.data_dir, settings.public_url) == (tmp_path / "d", "https://registry.example")


def test_a_bad_value_is_named_with_its_source_and_not_echoed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MOORAGE_WORKERS", "s3cret-looking-value")
    with pytest.raises(SettingsError) as raised:
        load_settings(data_dir=tmp_path)
    assert "workers (from MOORAGE_WORKERS)" in str(raised.value)
    assert "s3cret" not in str(raised.value)

    monkeypatch.delenv("MOORAGE_WORKERS")
    (tmp_path / "moorage.toml").write_text("upload_ttl_hours = \"a week\"\n")
    with pytest.raises(SettingsError, match=r"upload_ttl_hours \(from .*moorage.toml\)"):
        load_settings(data_dir=tmp_path)
    (tmp_path / "moorage.toml").write_text("workers = [\n")
    with pytest.raises(SettingsError, match="cannot read the settings file"):
        load_settings(data_dir=tmp_path)

    with pytest.raises(SettingsError, match=r"settings file .*missing.toml \(from --config\) does not exist"):
        load_settings(data_dir=tmp_path, config=tmp_path / "missing.toml")

    monkeypatch.setenv("MOORAGE_TLS_HOSTNAMES", "registry.local")
    with pytest.raises(SettingsError, match="MOORAGE_TLS_HOSTNAMES must be a JSON list"):
        load_settings(data_dir=tmp_path / "other")


def test_serve_refuses_a_bad_setting_in_one_line_without_a_traceback(tmp_path: Path) -> None:
    env = {**{k: v for k, v in os.environ.items() if not k.upper().startswith("MOORAGE_")}, "MOORAGE_WORKERS": "x"}
    result = subprocess.run([sys.executable, "-m", "moorage.cli.main", "serve", "--data-dir", str(tmp_path),
                             "--plain-http"], env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "error: invalid setting: workers (from MOORAGE_WORKERS)" in result.stderr
    assert "Traceback" not in result.stderr
