"""Where Fractal Studio keeps its files: one app name, one set of per-user folders (platformdirs).

Every module asks here for its folder:

- settings (`settings.ini`): `~/.config/fractal-studio` on Linux (XDG);
- autosave and installed models: `~/.local/share/fractal-studio` (`autosave/`, `models/`; the models
  folder can be set by `$FRACTAL_STUDIO_MODELS`);
- cache (precision timings; training data in `data/`): `~/.cache/fractal-studio` (`$FRACTAL_STUDIO_CACHE`,
  `$FRACTAL_STUDIO_DATA` for the training data);
- logs and crash reports: `~/.local/state/fractal-studio/log`.

macOS and Windows get their platform's folders for the same names (platformdirs). With
`$FRACTAL_STUDIO_HOME` set, all of them are subfolders of that one folder (a portable install, a test).

Older versions wrote to other places: the app's settings and autosave under `FractalStudio` (Qt's
organisation/application folders), training data under `~/.cache/fractal-studio/data` on every
platform, and on Windows models and cache one folder deeper (platformdirs' author folder).
`migrate_old_folders` moves what they left into the folders above, once (module docstring there).
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
import time
from pathlib import Path

APP_NAME = "fractal-studio"
HOME_ENV = "FRACTAL_STUDIO_HOME"
MIGRATED = "migrated-from-older-versions.txt"  # in data_dir(): written once the move is done

log = logging.getLogger(__name__)


def _dirs():
    import platformdirs

    # appauthor=False: no author folder above the app's on Windows (%LOCALAPPDATA%\fractal-studio)
    return platformdirs.PlatformDirs(APP_NAME, appauthor=False)


def _home() -> Path | None:
    value = os.environ.get(HOME_ENV, "").strip()
    return Path(value).expanduser() if value else None


def _folder(name: str, platform_folder: str) -> Path:
    """`name` under $FRACTAL_STUDIO_HOME when it is set, else the platform's folder of that
    PlatformDirs attribute."""
    home = _home()
    return home / name if home else getattr(_dirs(), platform_folder)


def config_dir() -> Path:
    return _folder("config", "user_config_path")


def data_dir() -> Path:
    return _folder("data", "user_data_path")


def cache_dir() -> Path:
    return _folder("cache", "user_cache_path")


def log_dir() -> Path:
    return _folder("log", "user_log_path")


def settings_file() -> Path:
    return config_dir() / "settings.ini"


def autosave_dir() -> Path:
    return data_dir() / "autosave"


def models_dir() -> Path:
    """Installed (downloaded, converted) models; the bundled ones live in the package."""
    return data_dir() / "models"


def training_data_dir() -> Path:
    """The built-in training data's download cache."""
    return cache_dir() / "data"


def folders() -> dict[str, Path]:
    """Every folder by what it holds (for the About box and the README)."""
    return {"settings": config_dir(), "autosave": autosave_dir(), "models": models_dir(),
            "cache": cache_dir(), "logs": log_dir()}


# ------------------------------------------------------------------------------------ migration
def old_locations() -> list[tuple[Path, Path]]:
    """(where an older version wrote it, where it belongs now) for each file or folder they wrote."""
    import platformdirs

    home = Path.home()
    if sys.platform == "win32":
        qt_config = qt_data = platformdirs.user_data_path(roaming=True)  # %APPDATA%
    else:
        # Qt's IniFormat settings: $XDG_CONFIG_HOME or ~/.config, also on macOS
        qt_config = Path(os.environ.get("XDG_CONFIG_HOME") or home / ".config") \
            if sys.platform.startswith("linux") else home / ".config"
        qt_data = platformdirs.user_data_path()  # QStandardPaths' AppDataLocation base
    with_author = platformdirs.PlatformDirs(APP_NAME)  # what model/download and precision used
    return [
        (qt_config / "FractalStudio" / "Fractal Studio.ini", settings_file()),
        (qt_data / "FractalStudio" / "Fractal Studio", autosave_dir()),
        (with_author.user_data_path / "models", models_dir()),
        (with_author.user_cache_path / "precision.json", cache_dir() / "precision.json"),
        (home / ".cache" / APP_NAME / "data", training_data_dir()),
    ]


def migrate_old_folders(locations: list[tuple[Path, Path]] | None = None) -> list[Path]:
    """Moves what older versions wrote (`old_locations`) into today's folders, once; the moved
    files' new paths.

    It never loses a file: a file is moved only where the new place has none of that name (else the
    old one stays where it was, and a warning says so), across file systems by a copy that is
    renamed into place before the original is removed. It runs only while an old location exists
    and `data_dir()/MIGRATED` does not; that file is written when a run has moved everything it
    could, so it never runs twice (an older version started again later is not followed). Emptied
    old folders are removed. Nothing happens with $FRACTAL_STUDIO_HOME set (a portable install has
    no older folders)."""
    if locations is None:
        if _home() is not None:
            return []
        locations = old_locations()
    pairs = [(old, new) for old, new in locations if os.path.lexists(old) and not _same_or_nested(old, new)]
    record = data_dir() / MIGRATED
    if not pairs or record.exists():
        return []
    moved, failed = [], False
    for old, new in pairs:
        sources = [old] if not old.is_dir() or old.is_symlink() else sorted(
            p for p in old.rglob("*") if p.is_symlink() or not p.is_dir())
        for source in sources:
            target = new if source == old else new / source.relative_to(old)
            if os.path.lexists(target):
                log.warning("kept %s where it is: %s already exists", source, target)
                continue
            try:
                _move_file(source, target)
            except OSError as error:
                failed = True
                log.warning("could not move %s to %s (%s); it stays where it is", source, target, error)
                continue
            moved.append(target)
        if old.is_dir():
            _remove_empty_folders(old)
    for old, _ in pairs:  # the app's old organisation folder, once emptied
        if old.parent.name == "FractalStudio":
            _remove_empty_folders(old.parent)
    if moved:
        log.info("moved %d file(s) from older versions' folders into %s", len(moved), data_dir().parent)
    if not failed:
        record.parent.mkdir(parents=True, exist_ok=True)
        lines = [f"{time.strftime('%Y-%m-%d %H:%M:%S')}: files older versions wrote, moved here once",
                 *(str(path) for path in moved)]
        record.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return moved


def _same_or_nested(a: Path, b: Path) -> bool:
    a, b = Path(os.path.abspath(a)), Path(os.path.abspath(b))
    return a == b or a in b.parents or b in a.parents


def _move_file(source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.rename(source, target)  # checked free above; same file system: atomic
        return
    except OSError as error:
        import errno

        if error.errno != errno.EXDEV:
            raise
    part = target.with_name(target.name + ".moving")
    try:
        shutil.copy2(source, part, follow_symlinks=False)
        os.replace(part, target)
    except BaseException:
        part.unlink(missing_ok=True)
        raise
    source.unlink()


def _remove_empty_folders(folder: Path) -> None:
    if not folder.is_dir() or folder.is_symlink():
        return
    for child in sorted((p for p in folder.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts)):
        try:
            child.rmdir()
        except OSError:
            pass
    try:
        folder.rmdir()
    except OSError:
        pass
