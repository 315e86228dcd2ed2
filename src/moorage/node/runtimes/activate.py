"""Making a runtime pick up what ``node-config --apply`` wrote: a systemd restart or reload, on request.

Only the node's own systemd can do it, so this runs only for ``--root /`` on a machine booted with
systemd (``/run/systemd/system`` exists, as ``sd_booted`` checks). Anywhere else the caller is told the
exact command to run on the node instead of being left to guess.
"""

from __future__ import annotations

import shlex
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, slots=True)
class Activation:
    ran: bool
    ok: bool
    message: str


def activate(command: str, root: Path) -> Activation:
    """Run ``command`` (``systemctl restart containerd`` and the like) if this node's systemd can."""
    argv = shlex.split(command.split("#", 1)[0])
    if not argv:
        return Activation(False, True, "nothing to restart or reload")
    if str(root) != "/":
        return Activation(False, False, f"the node under --root {root} is not this machine's: run `{' '.join(argv)}` "
                                        "on the node itself")
    systemctl = shutil.which(argv[0])
    if not Path("/run/systemd/system").is_dir() or systemctl is None:
        return Activation(False, False, f"this machine does not run systemd: restart the runtime the way it was "
                                        f"started (the equivalent of `{' '.join(argv)}`)")
    try:
        done = subprocess.run([systemctl, *argv[1:]], capture_output=True, text=True, timeout=120, check=False)
    except (OSError, subprocess.SubprocessError) as exc:
        return Activation(True, False, f"`{' '.join(argv)}` failed: {exc}")
    if done.returncode != 0:
        why = (done.stderr or done.stdout).strip() or f"exit status {done.returncode}"
        return Activation(True, False, f"`{' '.join(argv)}` failed: {why}")
    return Activation(True, True, f"ran `{' '.join(argv)}`")
