"""Atomic file writes: a crash, a full disk or a cancel never leaves a half-written file behind.

Every file the program writes (images, model weights, training state, autosaves) goes through
`atomic_write`: the data goes to a hidden temporary file next to the target, is flushed to disk,
and only then replaces the target in one rename; the folder entry is flushed too. On any failure
the temporary file is removed and the old target, if any, is left as it was.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO


def atomic_write(path: str | os.PathLike, write: Callable[[BinaryIO], object], *,
                 private: bool = False) -> None:
    """Calls `write(file)` on a temporary file, then renames it to `path`. OSError propagates.

    private=False lets the umask decide the permissions, as for any new file (a model or image
    others may read); private=True makes the file readable by its owner only (autosaved work).
    """
    target = Path(path)
    tmp, fd = _create_temp(target, 0o600 if private else 0o666)
    try:
        with os.fdopen(fd, "wb") as out:
            write(out)
            out.flush()
            os.fsync(out.fileno())  # the data must be on disk before the rename makes it visible
        os.replace(tmp, target)
    except BaseException:  # KeyboardInterrupt included: leave no temporary file behind
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    _fsync_dir(target.parent)


def _create_temp(target: Path, mode: int) -> tuple[Path, int]:
    """A new hidden file next to `target` (so the rename stays on one file system)."""
    for _ in range(100):
        tmp = target.with_name(f".{target.name}.{secrets.token_hex(4)}.tmp")
        try:
            return tmp, os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), mode)
        except FileExistsError:
            continue
    raise FileExistsError(errno.EEXIST, "could not create a temporary file", str(target.parent))


def _fsync_dir(folder: Path) -> None:
    """Persists the rename itself (POSIX); not possible, and not needed, on some platforms."""
    with contextlib.suppress(OSError, AttributeError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
