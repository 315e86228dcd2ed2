"""The settings choose the blob store; a choice that cannot work is refused with what to set, and the S3 secret
never shows in a message or a representation."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from moorage.blobs.factory import build_driver
from moorage.blobs.filesystem import FilesystemDriver
from moorage.blobs.s3 import S3Driver
from moorage.settings import SettingsError, load_settings

pytestmark = pytest.mark.fast


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in list(os.environ):
        if name.upper().startswith("MOORAGE_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("MOORAGE_DATA_DIR", str(tmp_path / "data"))


def test_the_filesystem_is_the_default(tmp_path: Path) -> None:
    assert isinstance(build_driver(load_settings()), FilesystemDriver)


def test_an_unknown_backend_is_named_with_its_source(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MOORAGE_STORAGE_BACKEND", "gcs")
    with pytest.raises(SettingsError, match=r"storage_backend \(from MOORAGE_STORAGE_BACKEND\)"):
        load_settings()


def test_s3_needs_a_bucket(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MOORAGE_STORAGE_BACKEND", "s3")
    with pytest.raises(SettingsError, match="s3_bucket"):
        build_driver(load_settings())


def test_s3_settings_from_the_config_file_keep_the_secret_out_of_sight(tmp_path: Path) -> None:
    config = tmp_path / "moorage.toml"
    config.write_text('storage_backend = "s3"\ns3_bucket = "images"\ns3_endpoint = "http://127.0.0.1:1"\n'
                      's3_path_style = true\ns3_prefix = "/registry/"\ns3_access_key_id = "AKIDEXAMPLE"\n'
                      's3_secret_access_key = "very-secret-value"\n')
    settings = load_settings(config=config)
    driver = build_driver(settings)
    assert isinstance(driver, S3Driver)
    assert driver.blob_key("sha256:" + "ab" * 32) == "registry/blobs/sha256/ab/" + "ab" * 32
    for text in (repr(settings), str(settings), repr(driver), repr(driver.config)):
        assert "very-secret-value" not in text
