"""The desktop entry: the freedesktop `.desktop` file, the icon and the AppStream metainfo, shipped as
package data (fractal_studio/assets/) and put in the user's XDG data folder by
`fractal-studio install-desktop` (Linux and other freedesktop systems). No Qt.

Installed files, under $XDG_DATA_HOME (default ~/.local/share):

    applications/DESKTOP_ID.desktop                 (its Exec line names this installation's command)
    icons/hicolor/scalable/apps/DESKTOP_ID.svg
    icons/hicolor/NxN/apps/DESKTOP_ID.png           (N in ICON_SIZES)
    metainfo/DESKTOP_ID.metainfo.xml

Installing again rewrites only what differs (another installation's command, a newer icon);
`uninstall` removes exactly these files.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from fractal_studio.errors import UserError
from fractal_studio.files import atomic_write

# The application's id: the .desktop file's name, the icon's name in the theme, the AppStream id and
# the Wayland app id (QGuiApplication.setDesktopFileName). Reverse-DNS, as AppStream asks.
DESKTOP_ID = "io.github.fractal_studio.FractalStudio"
ICON_SIZES = (16, 24, 32, 48, 64, 128, 256, 512)
GUI_COMMAND = "fractal-studio-gui"  # [project.gui-scripts]


def assets() -> Path:
    """The package data folder (fractal_studio/assets, in a checkout and in an installed wheel)."""
    return Path(__file__).resolve().parent / "assets"


def icon_files() -> dict[int, Path]:
    """The icon's PNG of each size (for the window icon too)."""
    folder = assets() / "icons"
    return {size: folder / f"fractal-studio-{size}.png" for size in ICON_SIZES}


def data_home() -> Path:
    """$XDG_DATA_HOME, else ~/.local/share (the XDG base directory specification)."""
    value = os.environ.get("XDG_DATA_HOME", "").strip()
    return Path(value) if value and os.path.isabs(value) else Path.home() / ".local" / "share"


def launcher() -> list[str]:
    """The command that opens this installation's app: its gui script beside its Python (a virtual
    environment's bin/), else the one on PATH, else `python -m fractal_studio gui`."""
    beside = Path(sys.executable).parent / (GUI_COMMAND + (".exe" if sys.platform == "win32" else ""))
    if beside.is_file() and os.access(beside, os.X_OK):
        return [str(beside)]
    found = shutil.which(GUI_COMMAND)
    if found:
        return [str(Path(found).absolute())]
    return [sys.executable, "-m", "fractal_studio", "gui"]


def exec_line(command: list[str]) -> str:
    """The Exec value: each argument quoted as the desktop entry specification says, then %f."""
    def quoted(argument: str) -> str:
        argument = argument.replace("%", "%%")
        if re.search(r"[\s\"'\\><~|&;$*?#()`]", argument):
            argument = '"' + re.sub(r'(["`$\\])', r"\\\1", argument) + '"'
        return argument.replace("\\", "\\\\")  # string values escape their backslashes once more

    return " ".join(quoted(argument) for argument in command) + " %f"


def planned(home: Path | None = None, command: list[str] | None = None) -> dict[Path, bytes]:
    """Every file the desktop entry installs, with its content."""
    home = data_home() if home is None else Path(home)
    folder = assets()
    entry = (folder / f"{DESKTOP_ID}.desktop").read_text(encoding="utf-8")
    entry = re.sub(r"(?m)^Exec=.*$", lambda m: "Exec=" + exec_line(command or launcher()), entry)
    icons = home / "icons" / "hicolor"
    metainfo = (folder / f"{DESKTOP_ID}.metainfo.xml").read_bytes()
    svg = (folder / "icons" / "fractal-studio.svg").read_bytes()
    files = {
        home / "applications" / f"{DESKTOP_ID}.desktop": entry.encode("utf-8"),
        home / "metainfo" / f"{DESKTOP_ID}.metainfo.xml": metainfo,
        icons / "scalable" / "apps" / f"{DESKTOP_ID}.svg": svg,
    }
    for size, path in icon_files().items():
        files[icons / f"{size}x{size}" / "apps" / f"{DESKTOP_ID}.png"] = path.read_bytes()
    return files


def _check_platform() -> None:
    if sys.platform == "win32" or sys.platform == "darwin":
        raise UserError("install-desktop adds a freedesktop menu entry (Linux and BSD desktops); on this "
                        "system start the app with `fractal-studio-gui` or make a shortcut to it")


def install(home: Path | None = None, command: list[str] | None = None) -> tuple[list[Path], list[Path]]:
    """Puts the desktop entry in place; (the files written, those already as they should be)."""
    _check_platform()
    written, unchanged = [], []
    for path, content in planned(home, command).items():
        try:
            if path.is_file() and path.read_bytes() == content:
                unchanged.append(path)
                continue
            path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write(path, lambda f, data=content: f.write(data))
        except OSError as error:
            raise UserError(f"could not write {path} ({error.strerror or error}); what was written before "
                            f"stays: run the command again once that folder is writable") from None
        written.append(path)
    if written:
        _refresh(data_home() if home is None else Path(home))
    return written, unchanged


def uninstall(home: Path | None = None) -> list[Path]:
    """Removes the files `install` puts in place; the ones it removed."""
    _check_platform()
    removed = []
    for path in planned(home, ["fractal-studio-gui"]):
        try:
            path.unlink()
        except FileNotFoundError:
            continue
        except OSError as error:
            raise UserError(f"could not remove {path} ({error.strerror or error})") from None
        removed.append(path)
    if removed:
        _refresh(data_home() if home is None else Path(home))
    return removed


def _refresh(home: Path) -> None:
    """Tells the desktop about the change where its tools are installed (menus watch the folder;
    GTK's icon cache notices a newer icons/hicolor); nothing fails without them."""
    hicolor = home / "icons" / "hicolor"
    if hicolor.is_dir():
        os.utime(hicolor)
    tool = shutil.which("update-desktop-database")
    if tool and (home / "applications").is_dir():
        try:
            subprocess.run([tool, "-q", str(home / "applications")], timeout=30, check=False,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        except (OSError, subprocess.SubprocessError):
            pass
