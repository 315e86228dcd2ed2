"""Which containerd release a node runs: it decides whether the CRI plugin reads ``certs.d`` at all.

containerd 1.6 and 1.7 (Debian 12 ships 1.6) leave the CRI registry ``config_path`` empty, so hosts.toml
files are ignored until ``config.toml`` sets it; 2.x reads ``/etc/containerd/certs.d`` by default. The
version is read by running ``containerd --version`` when the node is this machine (``--root /``); under
another root the binary there is not ours to run, and only a ``version = 3`` config (a 2.x-only format)
tells. Otherwise we cannot tell, and assume 1.x: the assumption that never passes a node that would fail.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

_VERSION = re.compile(r"\bv?(\d+)\.(\d+)(?:\.(\d+))?")


@dataclass(frozen=True, slots=True)
class ContainerdVersion:
    """``major`` is None when it cannot be told; ``how`` says where the answer came from."""

    major: int | None
    text: str
    how: str

    @property
    def reads_certs_d_by_default(self) -> bool:
        return self.major is not None and self.major >= 2

    def describe(self) -> str:
        if self.major is None:
            return f"containerd of unknown version ({self.how}; cannot tell, assuming 1.x)"
        return f"containerd {self.text} ({self.how})"


def parse_version(output: str) -> tuple[int, int, str] | None:
    """``containerd github.com/containerd/containerd 1.6.20~ds1 ...`` or ``... v2.0.0 <commit>``."""
    words = output.split()
    for word in words[1:] if len(words) > 1 else words:
        match = _VERSION.match(word)
        if match:
            return int(match.group(1)), int(match.group(2)), word.lstrip("v")
    return None


def containerd_version(root: Path, config_version: int | None = None) -> ContainerdVersion:
    """The node's containerd release, as well as it can be told from here (see the module docstring)."""
    if str(root) == "/":
        binary = shutil.which("containerd")
        if binary is not None:
            try:
                done = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=15, check=False)
                parsed = parse_version(done.stdout)
            except (OSError, subprocess.SubprocessError):
                parsed = None
            if parsed is not None:
                return ContainerdVersion(parsed[0], parsed[2], f"`{binary} --version`")
    if config_version == 3:
        return ContainerdVersion(2, "2.x", "its config.toml has version = 3, a containerd 2.x format")
    where = "no containerd binary to ask" if str(root) == "/" else f"the containerd under {root} is not run from here"
    return ContainerdVersion(None, "", where)
