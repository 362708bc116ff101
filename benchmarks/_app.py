"""The real MainWindow on temporary settings and data folders, driven by a coroutine on the app's
qasync loop (shared by the app benchmarks)."""

from __future__ import annotations

import os
import sys
import tempfile

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


def open_window(width: int, height: int, data_dir: str | None = None):
    from PySide6.QtCore import QSettings
    from PySide6.QtWidgets import QApplication

    from fractal_studio.app.main import return_large_buffers_to_the_system
    from fractal_studio.app.main_window import MainWindow

    return_large_buffers_to_the_system()  # as the app does at launch
    QApplication.instance() or QApplication(sys.argv)
    data_dir = data_dir or tempfile.mkdtemp()
    window = MainWindow(QSettings(f"{data_dir}/settings.ini", QSettings.Format.IniFormat), data_dir=data_dir)
    window.resize(width, height)
    window.show()
    return window


def run_on_app_loop(coroutine):
    """Runs `coroutine` to the end on a qasync loop over the application; returns its result."""
    from PySide6.QtWidgets import QApplication

    from fractal_studio.app.main import event_loop

    loop = event_loop(QApplication.instance())
    with loop:
        return loop.run_until_complete(coroutine)
