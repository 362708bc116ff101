"""Fixtures for the app tests: a window on temporary settings and data folders, captured dialogs."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")


@pytest.fixture(scope="session", autouse=True)
def event_loop(qapp):
    """The app's asyncio loop on Qt's, as the app runs it; tests advance it by processing Qt events."""
    from fractal_studio.app.main import event_loop

    return event_loop(qapp, driven_by_qt=True)


@pytest.fixture
def dialogs(monkeypatch):
    """Every QMessageBox shown, as (kind, title, text); questions are answered No."""
    from PySide6.QtWidgets import QMessageBox

    shown = []

    def capture(kind, answer):
        def show(parent, title, text, *args, **kwargs):
            shown.append((kind, title, text))
            return answer
        return show

    monkeypatch.setattr(QMessageBox, "warning", capture("warning", QMessageBox.StandardButton.Ok))
    monkeypatch.setattr(QMessageBox, "critical", capture("critical", QMessageBox.StandardButton.Ok))
    monkeypatch.setattr(QMessageBox, "information", capture("information", QMessageBox.StandardButton.Ok))
    monkeypatch.setattr(QMessageBox, "question", capture("question", QMessageBox.StandardButton.No))
    return shown


@pytest.fixture
def make_window(qtbot, tmp_path, dialogs):
    from PySide6.QtCore import QSettings

    from fractal_studio.app.main_window import MainWindow

    windows = []

    def make(data_dir=None, models_dir=None):
        settings = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
        window = MainWindow(settings, data_dir=data_dir or tmp_path / "data",
                            models_dir=models_dir or tmp_path / "models")
        window.autosave_timer.stop()
        qtbot.addWidget(window)
        window.resize(900, 600)
        window.show()
        windows.append(window)
        return window

    yield make
    for window in windows:
        window.close_running_job(10)


@pytest.fixture
def window(make_window, qtbot, converted):
    """A window with the toy model (16×16, 3 classes) loaded and fast sampling settings."""
    window = make_window()
    window.load_model_path(str(converted["toy_cols"]))
    qtbot.waitUntil(lambda: window.model is not None, timeout=20000)
    window.params_panel.iterations.setText("8,4")
    window.params_panel.random_seed.setChecked(False)
    window.params_panel.seed.setValue(7)
    window.params_panel.candidates.setValue(2)
    return window


@pytest.fixture
def photo(tmp_path):
    """A 40×32 RGB PNG with structure (gradients), its pixels."""
    y, x = np.mgrid[0:32, 0:40]
    pixels = np.stack([x * 6, y * 7, (x + y) * 3], axis=-1).astype(np.uint8)
    path = tmp_path / "photo.png"
    Image.fromarray(pixels).save(path)
    return path, pixels
