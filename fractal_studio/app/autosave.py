"""Crash-safe session autosave: image, mask, empty area and parameters as npz + json, written atomically.

A marker file exists while the app runs and is removed on a clean exit; finding it at start (with an
autosave present) means the last session crashed, so the app offers to restore it.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
import time
import zipfile
from pathlib import Path

import numpy as np

from fractal_studio.errors import UserError
from fractal_studio.files import atomic_write
from fractal_studio.untrusted import MAX_AUTOSAVE_BYTES, MAX_JSON_BYTES, check_npz, load_json_file

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

    def save(self, image: np.ndarray, mask: np.ndarray, empty: np.ndarray | None, info: dict,
             extra: dict[str, np.ndarray] | None = None) -> None:
        """Writes both files atomically (safe to call from a worker thread with copied arrays);
        `extra` arrays (the undo history's) are kept beside the image."""
        arrays = {**(extra or {}), "image": image, "mask": mask}
        if empty is not None:
            arrays["empty"] = empty
        with self._lock:
            # Owner-only: an autosave holds the user's unsaved work.
            atomic_write(self.folder / SESSION_NPZ, lambda f: np.savez_compressed(f, **arrays), private=True)
            text = json.dumps(info, indent=1).encode()
            atomic_write(self.folder / SESSION_JSON, lambda f: f.write(text), private=True)

    def load(self) -> tuple[dict[str, np.ndarray], dict]:
        """The saved arrays and info, every part checked; DamagedAutosave says what is wrong."""
        try:  # bounded: a damaged or planted autosave must not fill the memory before any check
            check_npz(self.folder / SESSION_NPZ, "the saved image", MAX_AUTOSAVE_BYTES)
            with np.load(self.folder / SESSION_NPZ, allow_pickle=False) as data:
                arrays = {k: data[k] for k in data.files}
        except UserError as error:
            raise DamagedAutosave(_short(error)) from None
        except (OSError, ValueError, EOFError, zipfile.BadZipFile, KeyError, MemoryError) as error:
            raise DamagedAutosave(f"the saved image cannot be read ({_short(error)})") from None
        try:
            info = load_json_file(self.folder / SESSION_JSON, "the saved settings", MAX_JSON_BYTES)
        except UserError as error:
            raise DamagedAutosave(_short(error)) from None
        _check_session(arrays, info)
        return arrays, info

    def set_aside(self) -> Path:
        """Moves an unreadable autosave out of the way (kept, in case it can be rescued by hand)."""
        target = self.folder / f"damaged-{time.strftime('%Y%m%d-%H%M%S')}"
        target.mkdir(parents=True, exist_ok=True)
        for name in (SESSION_NPZ, SESSION_JSON):
            with contextlib.suppress(OSError):
                (self.folder / name).replace(target / name)
        self.crashed = False
        return target

    def discard(self) -> None:
        for name in (SESSION_NPZ, SESSION_JSON):
            with contextlib.suppress(OSError):
                (self.folder / name).unlink()


class DamagedAutosave(ValueError):
    """The autosave exists but cannot be restored; the message says why, in one line."""


def _short(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return text[0][:120] if text else type(error).__name__


def _check_session(arrays: dict[str, np.ndarray], info) -> None:
    image = arrays.get("image")
    if image is None or image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3 or 0 in image.shape:
        raise DamagedAutosave("the saved image is missing or not an RGB picture")
    for name in ("mask", "empty"):
        value = arrays.get(name)
        if name == "mask" and value is None:
            raise DamagedAutosave("the saved mask is missing")
        if value is not None and (value.dtype != bool or value.shape != image.shape[:2]):
            raise DamagedAutosave(f"the saved {name} does not fit the image")
    pins = arrays.get("pins")
    if pins is not None and (pins.dtype != np.uint8 or pins.shape != (*image.shape[:2], 4)):
        raise DamagedAutosave("the saved pins do not fit the image")
    if not isinstance(info, dict):
        raise DamagedAutosave("the saved settings are not a table")
    checks = {"params": dict, "model": str, "path": str, "class_id": int, "origin": list}
    for key, kind in checks.items():
        value = info.get(key)
        if value is not None and not isinstance(value, kind):
            raise DamagedAutosave(f"the saved setting {key!r} is not a {kind.__name__}")
    origin = info.get("origin")
    if origin is not None and (len(origin) != 2 or not all(isinstance(v, int) for v in origin)):
        raise DamagedAutosave("the saved canvas origin is not two whole numbers")
