"""containerd's ``config.toml``: where the CRI plugin looks for ``certs.d``, and setting it in place.

The CRI plugin (what the kubelet pulls through) reads per-registry trust from
``<config_path>/<host:port>/hosts.toml``. Where that key lives depends on the config's ``version``:

- version 1 (no ``version`` key, containerd 1.x): ``[plugins.cri.registry]``
- version 2 (containerd 1.x, also read by 2.x): ``[plugins."io.containerd.grpc.v1.cri".registry]``
- version 3 (containerd 2.x only): ``[plugins."io.containerd.cri.v1.images".registry]``

containerd 1.6/1.7 leave ``config_path`` empty (``certs.d`` ignored); 2.x default it to
``/etc/containerd/certs.d:/etc/docker/certs.d``. When a node needs it set, :func:`plan_config_path`
returns the edited file: parsed and written back with tomlkit, so every other setting, comment and
layout stays as the operator left it. containerd refuses to start with ``config_path`` beside the
deprecated ``registry.mirrors`` table, so that case is refused here instead of breaking the node.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tomlkit
from tomlkit.container import Container
from tomlkit.items import Table

from moorage.node.runtimes.versions import ContainerdVersion, containerd_version

CONFIG_FILE = "etc/containerd/config.toml"
CERTS_DIR = "etc/containerd/certs.d"
CRI_V1 = "cri"
CRI_V2 = "io.containerd.grpc.v1.cri"
CRI_IMAGES_V3 = "io.containerd.cri.v1.images"
RESTART = "systemctl restart containerd"

_NEW_FILE_HEADER = (
    "# containerd configuration, created by `moorage node-config`: the CRI plugin (what the kubelet pulls\n"
    "# through) reads registry trust from hosts.toml files only when config_path is set, and containerd\n"
    "# 1.6/1.7 leave it empty. Every setting not named here keeps containerd's default.\n"
)


class ConfigPathError(ValueError):
    """config.toml cannot be made to read certs.d safely; the message says what to change by hand."""


def node_path(root: Path, value: str, base: Path) -> Path:
    """A path written in a node config file, seen from here: relative to ``base``, absolute paths under
    ``root`` (unless the file already names a path below ``root``, as ``--apply --root`` writes)."""
    path = Path(value)
    if not path.is_absolute():
        return base / path
    if str(root) == "/" or path.is_relative_to(root):
        return path
    return root / path.relative_to("/")


def plugin_key(config_version: int) -> str:
    return {1: CRI_V1, 3: CRI_IMAGES_V3}.get(config_version, CRI_V2)


def registry_section(config: dict[str, Any]) -> dict[str, Any]:
    """The CRI ``registry`` table of a parsed config, whatever its version."""
    plugins = config.get("plugins", {})
    if not isinstance(plugins, dict):
        return {}
    for name in (CRI_IMAGES_V3, CRI_V2, CRI_V1):
        section = plugins.get(name)
        if isinstance(section, dict) and isinstance(section.get("registry"), dict):
            return section["registry"]  # type: ignore[no-any-return]
    return {}


@dataclass
class ConfigPathPlan:
    """What the node's containerd reads, and the config.toml that makes it read ``certs_dir``."""

    config_file: Path
    version: ContainerdVersion
    #: Where hosts.toml files must go for this containerd to read them (a path under the root).
    certs_dir: Path
    #: The edited (or new) config.toml, or None when nothing has to change.
    new_text: str | None
    #: One sentence: what was found and what is done about it.
    reason: str
    #: The config_path value written, as the key reads in the file.
    config_path: str = ""

    @property
    def restart_needed(self) -> bool:
        # containerd reads its own config only when it starts.
        return self.new_text is not None


# As the node's containerd sees it, whatever --root this runs with: a DaemonSet mounts the host's
# /etc/containerd under --root /host, and the host's containerd must find /etc/containerd/certs.d.
NODE_CERTS_DIR = "/etc/containerd/certs.d"


def _only_comments(text: str) -> bool:
    return all(not line.strip() or line.lstrip().startswith("#") for line in text.splitlines())


def _table(parent: Container | Table, key: str, *, super_table: bool) -> Table:
    found = parent.get(key)
    if isinstance(found, Table):
        return found
    if found is not None:
        raise ConfigPathError(f"{key} in config.toml is not a table; fix the file by hand")
    made = tomlkit.table(is_super_table=super_table)
    parent.append(key, made)
    return made


def _edited(text: str, config_version: int, value: str) -> str:
    doc = tomlkit.parse(text)
    if _only_comments(text) and "version" not in doc:
        doc.add("version", 2)
        config_version = 2
    plugins = _table(doc, "plugins", super_table=True)
    plugin = _table(plugins, plugin_key(config_version), super_table=True)
    registry = _table(plugin, "registry", super_table=False)
    registry["config_path"] = value
    return doc.as_string()


def containerd_config_snippet(certs_dir: str = "/etc/containerd/certs.d") -> str:
    """The version 2 table that makes the CRI plugin read ``certs_dir``."""
    return f'[plugins."{CRI_V2}".registry]\n  config_path = {tomlkit.string(certs_dir).as_string()}\n'


def _new_file(value: str) -> str:
    return f"{_NEW_FILE_HEADER}version = 2\n\n{containerd_config_snippet(value)}"


def plan_config_path(root: Path) -> ConfigPathPlan:
    """Read ``<root>/etc/containerd/config.toml`` and decide whether (and how) it must set ``config_path``."""
    config_file = root / CONFIG_FILE
    default_dir = root / CERTS_DIR
    text: str | None = None
    parsed: dict[str, Any] = {}
    if config_file.is_file():
        try:
            text = config_file.read_text()
            parsed = tomllib.loads(text)
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            raise ConfigPathError(f"cannot read {config_file}: {exc}; containerd would not start with it either "
                                  "— fix it, then run this again") from None
    config_version = int(parsed.get("version", 1)) if text is not None and not _only_comments(text) else None
    version = containerd_version(root, config_version)
    section = registry_section(parsed)
    current = section.get("config_path")
    if isinstance(current, str) and current:
        dirs = [node_path(root, p, config_file.parent) for p in current.split(":") if p]
        return ConfigPathPlan(config_file, version, dirs[0], None,
                              f"{config_file} already sets config_path = {current!r}: containerd reads hosts.toml "
                              "there on every pull, no restart needed", current)
    if version.reads_certs_d_by_default and current is None:
        return ConfigPathPlan(config_file, version, default_dir, None,
                              f"{version.describe()} reads {default_dir} by default: nothing to change in "
                              f"{config_file}")
    mirrors = section.get("mirrors")
    if isinstance(mirrors, dict) and mirrors:
        raise ConfigPathError(
            f"{config_file} configures registry.mirrors ({', '.join(mirrors)}), and containerd refuses to start "
            "with config_path beside it. Move each mirror into <certs.d>/<host>/hosts.toml, delete the mirrors "
            "table, then run this again")
    value = NODE_CERTS_DIR
    shown = "is empty" if current == "" else "is not set"
    setting = f'config_path = "{value}" under [plugins."{plugin_key(config_version or 2)}".registry]'
    if text is None:
        new_text, done = _new_file(value), f"creating {config_file} with {setting}"
    else:
        new_text = _edited(text, config_version or 2, value)
        done = f"setting {setting} in {config_file} (a backup of the old file is kept beside it)"
    return ConfigPathPlan(config_file, version, default_dir, new_text,
                          f"{version.describe()}: config_path {shown}, so the CRI plugin ignores {default_dir}; "
                          f"{done}, then `{RESTART}`", value)
