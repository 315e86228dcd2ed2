"""The data directory's privacy: nothing under it is for other local accounts.

It holds the database (password hashes, the token-signing key), every blob, upload and TLS key, so
the directory is 0700 and everything in it 0600 (directories 0700). New files get that from the
process umask; files an older version (or an operator) left open are repaired at each start.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass, field
from pathlib import Path

#: The umask of every process that writes into the data directory: owner-only files and directories.
PRIVATE_UMASK = 0o077
_OTHERS = 0o077  # the group and world permission bits
_PRIVATE_DIR, _PRIVATE_FILE = 0o700, 0o600
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def keep_new_files_private() -> None:
    """From now on, this process and the processes it starts create files 0600 and directories 0700."""
    os.umask(PRIVATE_UMASK)


@dataclass
class PrivacyRepair:
    """What :func:`make_private` found: how many paths it tightened, and those it could not change."""

    root: Path
    tightened: int = 0
    unchangeable: list[str] = field(default_factory=list)

    def warnings(self) -> list[str]:
        lines = []
        if self.tightened:
            lines.append(f"moorage: warning: {self.tightened} file(s)/dir(s) under {self.root} were readable by "
                         "other accounts; made them private (0600/0700)")
        if self.unchangeable:
            lines.append(f"moorage: warning: {len(self.unchangeable)} file(s)/dir(s) under {self.root} are "
                         f"readable by other accounts and could not be changed (owned by another account?), "
                         f"e.g. {self.unchangeable[0]}: run `chmod -R go= {self.root}` as their owner")
        return lines


def make_private(root: Path) -> PrivacyRepair:
    """Create ``root`` (0700) if missing, then take group and other permissions off it and everything
    under it that has any. Symbolic links are neither followed nor changed: what one points at is not
    ours to chmod. Only paths that are wrong get a ``chmod``, so a large, already private store costs
    one ``lstat`` per entry."""
    root.mkdir(mode=0o700, parents=True, exist_ok=True)
    repair = PrivacyRepair(root)
    # The root itself may be a symlink the operator chose (e.g. onto a bigger disk): that one is followed.
    root_fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        mode = os.fstat(root_fd).st_mode
        if mode & _OTHERS:
            try:
                os.fchmod(root_fd, _PRIVATE_DIR)
                repair.tightened += 1
            except OSError:
                repair.unchangeable.append(str(root))
        _walk(root_fd, str(root), repair)
    finally:
        os.close(root_fd)
    return repair


def _walk(root_fd: int, root_path: str, repair: PrivacyRepair) -> None:
    # Depth-first with one open descriptor per level; every path is reached relative to its parent's
    # descriptor, so a directory swapped for a symlink mid-walk leads nowhere outside the tree.
    stack = [(root_fd, os.scandir(root_fd), root_path)]
    try:
        while stack:
            dir_fd, entries, where = stack[-1]
            entry = next(entries, None)
            if entry is None:
                stack.pop()
                entries.close()
                if dir_fd != root_fd:
                    os.close(dir_fd)
                continue
            path = f"{where}/{entry.name}"
            try:
                if entry.is_symlink():
                    continue
                is_dir = entry.is_dir(follow_symlinks=False)
                mode = entry.stat(follow_symlinks=False).st_mode
            except FileNotFoundError:
                continue  # gone meanwhile, e.g. an upload another replica just finished
            if mode & _OTHERS:
                _tighten(dir_fd, entry.name, path, repair)
            if is_dir:
                try:
                    child_fd = os.open(entry.name, _DIR_FLAGS, dir_fd=dir_fd)
                except OSError:
                    continue  # gone, swapped for a symlink, or closed even to its owner: nothing to reach
                try:
                    stack.append((child_fd, os.scandir(child_fd), path))
                except OSError:
                    os.close(child_fd)
    finally:
        for dir_fd, entries, _ in stack:
            entries.close()
            if dir_fd != root_fd:
                os.close(dir_fd)


def _tighten(dir_fd: int, name: str, path: str, repair: PrivacyRepair) -> None:
    # Opened without following a symlink, then changed through that very descriptor: a name swapped
    # for a link since it was looked at cannot redirect the chmod onto a file outside the tree.
    try:
        fd = os.open(name, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dir_fd)
    except FileNotFoundError:
        return
    try:
        mode = os.fstat(fd).st_mode
        if stat.S_ISLNK(mode) or not mode & _OTHERS:
            return
        private = _PRIVATE_DIR if stat.S_ISDIR(mode) else _PRIVATE_FILE
        try:
            # fchmod refuses O_PATH descriptors; the /proc link reaches the same inode without a lookup by name.
            os.chmod(f"/proc/self/fd/{fd}", private)
        except FileNotFoundError:
            os.chmod(name, private, dir_fd=dir_fd)  # no /proc mounted: by name, just checked not to be a link
        repair.tightened += 1
    except OSError:
        repair.unchangeable.append(path)
    finally:
        os.close(fd)
