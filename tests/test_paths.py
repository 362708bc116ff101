"""One set of folders for everything, and the one-time move of what older versions wrote elsewhere."""

from __future__ import annotations

import errno
import logging
import os
import shutil
import sys

import pytest

from fractal_studio import paths

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="XDG folders")


@pytest.fixture
def home(tmp_path, monkeypatch):
    """A fake home with its XDG folders unset (their defaults), no $FRACTAL_STUDIO_* overrides."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    for name in ("XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_CACHE_HOME", "XDG_STATE_HOME",
                 paths.HOME_ENV, "FRACTAL_STUDIO_MODELS", "FRACTAL_STUDIO_CACHE", "FRACTAL_STUDIO_DATA"):
        monkeypatch.delenv(name, raising=False)
    return home


def old_files(home):
    """What an older version left: Qt's settings and autosave folders under 'FractalStudio'."""
    settings = home / ".config" / "FractalStudio" / "Fractal Studio.ini"
    autosave = home / ".local" / "share" / "FractalStudio" / "Fractal Studio"
    (autosave / "damaged-20250101-120000").mkdir(parents=True)
    settings.parent.mkdir(parents=True)
    files = {settings: b"[params]\ndefault\\seed=7\n",
             autosave / "session.npz": b"npz bytes", autosave / "session.json": b'{"model": "photo_64"}',
             autosave / "damaged-20250101-120000" / "session.json": b"{broken"}
    for path, data in files.items():
        path.write_bytes(data)
    return files


def test_every_folder_is_under_one_app_name_in_the_xdg_folders(home):
    assert paths.settings_file() == home / ".config/fractal-studio/settings.ini"
    assert paths.autosave_dir() == home / ".local/share/fractal-studio/autosave"
    assert paths.models_dir() == home / ".local/share/fractal-studio/models"
    assert paths.cache_dir() == home / ".cache/fractal-studio"
    assert paths.training_data_dir() == home / ".cache/fractal-studio/data"
    assert paths.log_dir() == home / ".local/state/fractal-studio/log"


def test_every_module_asks_paths_for_its_folder(home, tmp_path, monkeypatch):
    from fractal_studio.model.download import models_dir
    from fractal_studio.sampling.precision import cache_folder
    from fractal_studio.training.sources import data_dir

    root = tmp_path / "portable"
    monkeypatch.setenv(paths.HOME_ENV, str(root))
    assert models_dir() == root / "data" / "models"
    assert cache_folder() == root / "cache"
    assert data_dir() == root / "cache" / "data"
    assert paths.log_dir() == root / "log"
    assert paths.settings_file() == root / "config" / "settings.ini"
    monkeypatch.setenv("FRACTAL_STUDIO_MODELS", str(tmp_path / "mine"))  # the folder's own variable wins
    assert models_dir() == tmp_path / "mine"


def test_the_app_reads_its_settings_and_autosaves_where_paths_says(home, qtbot, monkeypatch):
    pytest.importorskip("pytestqt")
    from fractal_studio.app.main_window import MainWindow
    from fractal_studio.app.settings import open_settings

    assert open_settings().fileName() == str(paths.settings_file())
    window = MainWindow(models_dir=home / "models")
    qtbot.addWidget(window)
    assert window.autosave.folder == paths.autosave_dir()
    window.close()


def test_what_older_versions_wrote_is_moved_once_and_nothing_is_lost(home, caplog):
    files = old_files(home)
    caplog.set_level(logging.INFO, logger="fractal_studio.paths")
    moved = paths.migrate_old_folders()
    new = {paths.settings_file(): files[home / ".config/FractalStudio/Fractal Studio.ini"]}
    old_autosave = home / ".local/share/FractalStudio/Fractal Studio"
    for path, data in files.items():
        if old_autosave in path.parents:
            new[paths.autosave_dir() / path.relative_to(old_autosave)] = data
    assert sorted(moved) == sorted(new)
    assert {path: path.read_bytes() for path in new} == new
    assert not (home / ".config/FractalStudio").exists()
    assert not (home / ".local/share/FractalStudio").exists()
    record = paths.data_dir() / paths.MIGRATED
    assert str(paths.settings_file()) in record.read_text()
    assert "moved 4 file(s)" in caplog.text

    # An older version run again afterwards writes its folders anew: they are not followed.
    settings = home / ".config/FractalStudio/Fractal Studio.ini"
    settings.parent.mkdir(parents=True)
    settings.write_text("[params]\ndefault\\seed=9\n")
    assert paths.migrate_old_folders() == []
    assert settings.read_text().endswith("seed=9\n")
    assert paths.settings_file().read_text().endswith("seed=7\n")


def test_a_file_already_in_the_new_place_is_kept_and_so_is_the_old_one(home, caplog):
    files = old_files(home)
    paths.settings_file().parent.mkdir(parents=True)
    paths.settings_file().write_text("[new]\n")
    moved = paths.migrate_old_folders()
    old_settings = home / ".config/FractalStudio/Fractal Studio.ini"
    assert paths.settings_file() not in moved and len(moved) == len(files) - 1
    assert paths.settings_file().read_text() == "[new]\n"
    assert old_settings.read_bytes() == files[old_settings]
    assert "kept" in caplog.text and "already exists" in caplog.text


def test_across_file_systems_a_file_is_copied_into_place_before_the_original_goes(home, monkeypatch):
    files = old_files(home)
    rename = os.rename

    def other_device(source, target):
        if "/FractalStudio/" in str(source):  # every old file is on another file system
            raise OSError(errno.EXDEV, "Invalid cross-device link")
        return rename(source, target)

    monkeypatch.setattr(os, "rename", other_device)
    copy = shutil.copy2
    calls = []

    def failing_copy(source, target, **kwargs):
        calls.append(source)
        if str(source).endswith("session.npz"):
            copy(source, target, **kwargs)
            raise OSError(errno.ENOSPC, "No space left on device")
        return copy(source, target, **kwargs)

    monkeypatch.setattr(shutil, "copy2", failing_copy)
    moved = paths.migrate_old_folders()
    npz = home / ".local/share/FractalStudio/Fractal Studio/session.npz"
    assert npz.read_bytes() == files[npz]  # the original stays: its copy failed
    assert not (paths.autosave_dir() / "session.npz").exists()
    assert not list(paths.autosave_dir().glob("*.moving"))  # no partial copy is left
    assert len(moved) == len(files) - 1 and len(calls) == len(files)
    assert not (paths.data_dir() / paths.MIGRATED).exists()  # not done: the next start tries again

    monkeypatch.setattr(shutil, "copy2", copy)
    assert paths.migrate_old_folders() == [paths.autosave_dir() / "session.npz"]
    assert (paths.autosave_dir() / "session.npz").read_bytes() == files[npz] and not npz.exists()
    assert (paths.data_dir() / paths.MIGRATED).exists()


def test_nothing_moves_for_a_portable_install_or_when_there_is_nothing_old(home, tmp_path, monkeypatch):
    assert paths.migrate_old_folders() == []
    assert not (paths.data_dir() / paths.MIGRATED).exists()  # nothing old: nothing written either
    old_files(home)
    monkeypatch.setenv(paths.HOME_ENV, str(tmp_path / "portable"))
    assert paths.migrate_old_folders() == []
    assert (home / ".config/FractalStudio/Fractal Studio.ini").exists()


def test_the_command_line_moves_old_folders_before_a_command_runs(home, capsys):
    from fractal_studio.cli.main import main

    old_files(home)
    assert main(["models", "list"]) == 0
    assert paths.settings_file().exists()
    assert f"Installed in {paths.models_dir()}" in capsys.readouterr().out
