"""Crash-safe session autosave: image, mask, empty area and parameters as npz + json, written atomically.

A marker file exists while the app runs and is removed on a clean exit; finding it at start (with an
autosave present) means the last session crashed, so the app offers to restore it.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
from pathlib import Path

import numpy as np

from fractal_studio.files import atomic_write

SESSION_NPZ = "session.npz"
SESSION_JSON = "session.json"
RUNNING = "running.marker"


class Autosave:
    def __init__(self, folder: str | os.PathLike):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.crashed = (self.folder / RUNNING).exists() and self.exists()
        self._lock = threading.Lock()

    def exists(self) -> bool:
        return (self.folder / SESSION_NPZ).is_file() and (self.folder / SESSION_JSON).is_file()

    def mark_running(self) -> None:
        (self.folder / RUNNING).write_text(str(os.getpid()))

    def mark_clean_exit(self) -> None:
        with contextlib.suppress(OSError):
            (self.folder / RUNNING).unlink()

    def save(self, image: np.ndarray, mask: np.ndarray, empty: np.ndarray | None, info: dict) -> None:
        """Writes both files atomically (safe to call from a worker thread with copied arrays)."""
        arrays = {"image": image, "mask": mask}
        if empty is not None:
            arrays["empty"] = empty
        with self._lock:
            # Owner-only: an autosave holds the user's unsaved work.
            atomic_write(self.folder / SESSION_NPZ, lambda f: np.savez_compressed(f, **arrays), private=True)
            text = json.dumps(info, indent=1).encode()
            atomic_write(self.folder / SESSION_JSON, lambda f: f.write(text), private=True)

    def load(self) -> tuple[dict[str, np.ndarray], dict]:
        with np.load(self.folder / SESSION_NPZ) as data:
            arrays = {k: data[k] for k in data.files}
        info = json.loads((self.folder / SESSION_JSON).read_text())
        return arrays, info

    def discard(self) -> None:
        for name in (SESSION_NPZ, SESSION_JSON):
            with contextlib.suppress(OSError):
                (self.folder / name).unlink()
