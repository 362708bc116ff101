"""The desktop entry, its icon and metainfo: shipped with the package, installed by
`fractal-studio install-desktop` into the user's XDG data folder, idempotent, and removed again."""

from __future__ import annotations

import configparser
import shlex
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from PIL import Image

from fractal_studio import desktop
from fractal_studio.cli.main import main

pytestmark = pytest.mark.skipif(sys.platform in ("win32", "darwin"), reason="freedesktop systems")


@pytest.fixture
def xdg(tmp_path, monkeypatch):
    home = tmp_path / "share"
    monkeypatch.setenv("XDG_DATA_HOME", str(home))
    return home


def entry(path) -> configparser.SectionProxy:
    parser = configparser.ConfigParser(interpolation=None)
    parser.optionxform = str  # keys are case-sensitive
    parser.read(path, encoding="utf-8")
    return parser["Desktop Entry"]


def test_the_package_ships_the_entry_the_metainfo_and_an_icon_of_every_size():
    folder = desktop.assets()
    shipped = entry(folder / f"{desktop.DESKTOP_ID}.desktop")
    assert shipped["Icon"] == desktop.DESKTOP_ID and shipped["Type"] == "Application"
    assert shipped["Exec"] == "fractal-studio-gui %f" and "Graphics;" in shipped["Categories"]
    meta = ET.parse(folder / f"{desktop.DESKTOP_ID}.metainfo.xml").getroot()
    assert meta.findtext("id") == desktop.DESKTOP_ID
    assert meta.find("launchable").text == f"{desktop.DESKTOP_ID}.desktop"
    assert meta.findtext("project_license") == "MIT"
    for size, path in desktop.icon_files().items():
        with Image.open(path) as icon:
            assert icon.size == (size, size) and icon.mode == "RGBA"
            assert icon.getpixel((size // 2, size // 2))[3] == 255  # drawn, not empty
            assert icon.getpixel((0, 0))[3] < 255  # rounded corners
    svg = ET.parse(folder / "icons" / "fractal-studio.svg").getroot()
    assert svg.tag.endswith("svg") and len(svg.findall("{http://www.w3.org/2000/svg}rect")) > 10


def test_install_desktop_puts_every_file_in_place_once_and_uninstall_removes_them(xdg, capsys):
    assert main(["install-desktop"]) == 0
    out, err = capsys.readouterr()
    written = [line for line in out.splitlines() if line]
    expected = set(desktop.planned(xdg))
    assert {Path(line) for line in written} == expected
    assert len(expected) == 3 + len(desktop.ICON_SIZES) and "installed the desktop entry" in err
    installed = entry(xdg / "applications" / f"{desktop.DESKTOP_ID}.desktop")
    command = shlex.split(installed["Exec"])
    assert command[-1] == "%f" and command[:-1] == desktop.launcher()
    assert (xdg / "icons/hicolor/48x48/apps" / f"{desktop.DESKTOP_ID}.png").read_bytes() == \
        desktop.icon_files()[48].read_bytes()
    assert (xdg / "icons/hicolor/scalable/apps" / f"{desktop.DESKTOP_ID}.svg").is_file()
    assert (xdg / "metainfo" / f"{desktop.DESKTOP_ID}.metainfo.xml").is_file()

    before = {path: path.stat().st_mtime_ns for path in expected}
    assert main(["install-desktop"]) == 0  # idempotent: nothing rewritten
    out, err = capsys.readouterr()
    assert out == "" and "already installed" in err
    assert {path: path.stat().st_mtime_ns for path in expected} == before

    (xdg / "applications" / f"{desktop.DESKTOP_ID}.desktop").write_text("[Desktop Entry]\nExec=old\n")
    assert main(["install-desktop"]) == 0  # what differs (another installation's) is updated
    changed = xdg / "applications" / f"{desktop.DESKTOP_ID}.desktop"
    assert capsys.readouterr().out.splitlines() == [str(changed)]

    assert main(["install-desktop", "--uninstall"]) == 0
    assert sorted(capsys.readouterr().out.splitlines()) == sorted(f"removed {path}" for path in expected)
    assert not any(path.exists() for path in expected)
    assert main(["install-desktop", "--uninstall"]) == 0
    assert "nothing to remove" in capsys.readouterr().err


def test_the_exec_line_quotes_paths_as_the_specification_says():
    assert desktop.exec_line(["/opt/fs/bin/fractal-studio-gui"]) == "/opt/fs/bin/fractal-studio-gui %f"
    line = desktop.exec_line(["/home/a b/100%/$x/fractal-studio-gui"])
    assert line == '"/home/a b/100%%/\\\\$x/fractal-studio-gui" %f'


def test_the_launcher_is_this_installations_gui_script(tmp_path, monkeypatch):
    bin_dir = tmp_path / "venv" / "bin"
    bin_dir.mkdir(parents=True)
    script = bin_dir / "fractal-studio-gui"
    script.write_text("#!/bin/sh\n")
    script.chmod(0o755)
    monkeypatch.setattr(sys, "executable", str(bin_dir / "python"))
    assert desktop.launcher() == [str(script)]
    script.unlink()
    monkeypatch.setenv("PATH", str(tmp_path))
    assert desktop.launcher() == [str(bin_dir / "python"), "-m", "fractal_studio", "gui"]


@pytest.mark.skipif(shutil.which("desktop-file-validate") is None, reason="desktop-file-utils not installed")
def test_the_installed_entry_is_valid(xdg):
    desktop.install(xdg)
    path = xdg / "applications" / f"{desktop.DESKTOP_ID}.desktop"
    checked = subprocess.run(["desktop-file-validate", str(path)], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr


@pytest.mark.skipif(shutil.which("appstreamcli") is None, reason="appstream not installed")
def test_the_metainfo_is_valid():
    path = desktop.assets() / f"{desktop.DESKTOP_ID}.metainfo.xml"
    checked = subprocess.run(["appstreamcli", "validate", "--no-net", str(path)], capture_output=True,
                             text=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr
