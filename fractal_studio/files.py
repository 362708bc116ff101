"""Atomic file writes: a crash, a full disk or a cancel never leaves a half-written file behind.

Every file the program writes (images, model weights, training state, autosaves) goes through
`atomic_write`: the data goes to a hidden temporary file next to the target, is flushed to disk,
and only then replaces the target in one rename; the folder entry is flushed too. On any failure
the temporary file is removed and the old target, if any, is left as it was. (A target with other
hard links is written in place from the finished temporary file, its old content kept aside until
the end: a rename would cut the link.)
"""

from __future__ import annotations

import contextlib
import errno
import glob
import os
import re
import secrets
import stat
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import BinaryIO


def atomic_write(path: str | os.PathLike, write: Callable[[BinaryIO], object], *,
                 private: bool = False) -> None:
    """Calls `write(file)` on a temporary file, then renames it to `path`. OSError propagates.

    private=False lets the umask decide the permissions, as for any new file (a model or image
    others may read); private=True makes the file readable by its owner only (autosaved work).
    Replacing an existing file keeps its permissions; a symbolic link is followed and the file it
    points to is replaced (the link stays a link).
    """
    atomic_write_all([(path, write)], private=private)


def atomic_write_all(items: Sequence[tuple[str | os.PathLike, Callable[[BinaryIO], object]]], *,
                     private: bool = False) -> None:
    """Writes several files all or nothing: every file is written to its temporary file first;
    only when all are on disk do they replace their targets. If anything fails, no target has
    changed (files replaced before the failure are put back) and no temporary file is left."""
    targets = [_real_target(Path(path)) for path, _ in items]
    temps: list[Path] = []
    try:
        for target, (_, write) in zip(targets, items, strict=True):
            remove_stale_temps(target)
            tmp, fd = _create_temp(target, 0o600 if private else 0o666)
            temps.append(tmp)
            with os.fdopen(fd, "wb") as out:
                write(out)
                out.flush()
                os.fsync(out.fileno())  # the data must be on disk before the rename makes it visible
            _keep_mode(target, tmp, private)
        _replace_all(temps, targets)
    except BaseException:  # KeyboardInterrupt included: leave no temporary file behind
        for tmp in temps:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
        raise
    for folder in {target.parent for target in targets}:
        _fsync_dir(folder)


def _real_target(path: Path) -> Path:
    """The file a write to `path` should replace: the end of a chain of symbolic links."""
    return Path(os.path.realpath(path)) if path.is_symlink() else path


def _keep_mode(target: Path, tmp: Path, private: bool) -> None:
    try:
        mode = stat.S_IMODE(os.stat(target).st_mode)
        os.chmod(tmp, mode & 0o600 if private else mode)
    except FileNotFoundError:
        pass
    except OSError as error:  # FAT and exFAT keep one mode for every file and refuse another one
        if error.errno not in _MODE_REFUSED:
            raise


# What chmod of a file we have just created can only get from its file system
_MODE_REFUSED = {errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP}


def _replace_all(temps: list[Path], targets: list[Path]) -> None:
    """Renames every temp onto its target; if one rename fails, the targets already replaced get
    their old files back (kept as hard links until the end, or copies where links are refused),
    and new ones are removed. The last rename needs nothing kept: nothing after it can fail, and a
    rename that fails leaves its target as it was. So a single file is a plain rename, whether or
    not the file system allows hard links.

    A target with other hard links (the same file under several names) is written in place
    instead, so every name sees the new content: its old content is copied aside first and copied
    back on failure. (A rename would give this name a new file and leave the others behind.)"""
    # (target, its old file kept aside or None, written in place, existed before)
    backups: list[tuple[Path, Path | None, bool, bool]] = []
    try:
        for k, (tmp, target) in enumerate(zip(temps, targets, strict=True)):
            existed = target.exists()
            if existed and os.stat(target).st_nlink > 1:
                backups.append((target, _copy_aside(target), True, True))
                _copy_into(tmp, target)
                os.unlink(tmp)
            else:
                keep = existed and k < len(targets) - 1
                backups.append((target, _hard_link_aside(target) if keep else None, False, existed))
                os.replace(tmp, target)
    except BaseException:
        for target, backup, in_place, existed in reversed(backups):
            with contextlib.suppress(OSError):
                if in_place:
                    _copy_into(backup, target)
                elif backup is not None:
                    os.replace(backup, target)
                elif not existed and target.exists():
                    os.unlink(target)
        raise
    finally:
        for _, backup, _, _ in backups:
            if backup is not None:
                with contextlib.suppress(OSError):
                    os.unlink(backup)


def _copy_aside(target: Path) -> Path:
    """A copy of `target`'s content next to it (flushed to disk), to put back after a failure."""
    backup = _temp_name(target, ".old")
    _copy_into(target, backup)
    return backup


def _copy_into(source: Path, target: Path) -> None:
    """Writes `source`'s bytes into `target` itself (same file: its other names see them too)."""
    with open(source, "rb") as src, open(target, "r+b" if target.exists() else "wb") as dst:
        dst.truncate(0)
        while block := src.read(1 << 20):
            dst.write(block)
        dst.flush()
        os.fsync(dst.fileno())


def remove_stale_temps(target: Path) -> None:
    """Removes temporary files next to `target` left by writes of ours whose process has died
    (killed during a write: SIGKILL leaves no chance to clean up). Others' files are never touched."""
    with contextlib.suppress(OSError):
        for candidate in target.parent.glob(f".{glob.escape(target.name)}.*"):
            match = _TEMP_NAME.fullmatch(candidate.name[len(target.name) + 2:])
            if match and not _process_alive(int(match.group(1))):
                with contextlib.suppress(OSError):
                    os.unlink(candidate)


_TEMP_NAME = re.compile(r"(\d+)-[0-9a-f]{8}\.(?:tmp|old)")


def _process_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True  # someone else's process: assume alive
    return True


def _create_temp(target: Path, mode: int) -> tuple[Path, int]:
    """A new hidden file next to `target` (so the rename stays on one file system)."""
    for _ in range(100):
        tmp = _temp_name(target, ".tmp")
        try:
            return tmp, os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), mode)
        except FileExistsError:
            continue
    raise FileExistsError(errno.EEXIST, "could not create a temporary file", str(target.parent))


def _hard_link_aside(target: Path) -> Path:
    """A second name for `target`'s current file, so it can be put back after a failed replace;
    a copy of it where the file system refuses hard links (FAT and exFAT cards and sticks, many
    network shares)."""
    for _ in range(100):
        backup = _temp_name(target, ".old")
        try:
            os.link(target, backup)
            return backup
        except FileExistsError:
            continue
        except OSError:  # EPERM, ENOTSUP, EMLINK...: no second name here, so keep a copy instead
            return _copy_aside(target)
    raise FileExistsError(errno.EEXIST, "could not keep the old file aside", str(target.parent))


def _temp_name(target: Path, suffix: str) -> Path:
    """A hidden name next to `target` carrying our process id, so that a later write can tell a
    stale temporary file (its process is gone) from a live one."""
    return target.with_name(f".{target.name}.{os.getpid()}-{secrets.token_hex(4)}{suffix}")


def _fsync_dir(folder: Path) -> None:
    """Persists the rename itself (POSIX); not possible, and not needed, on some platforms."""
    with contextlib.suppress(OSError, AttributeError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
