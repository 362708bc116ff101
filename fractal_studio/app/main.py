"""Starts the Qt application on a qasync event loop (asyncio and Qt share one loop)."""

from __future__ import annotations

import asyncio
import sys

from fractal_studio.app.settings import APP, ORG


def _resolve_model(model: str | None) -> str | None:
    if not model:
        return None
    try:
        from fractal_studio.cli.common import resolve_model_path
    except ImportError:
        return model
    try:
        return str(resolve_model_path(model))
    except Exception:  # a bad name is reported by the window when it tries to load it
        return model


def launch(image: str | None = None, model: str | None = None) -> int:
    from PySide6.QtCore import Qt
    from PySide6.QtGui import QGuiApplication
    from PySide6.QtWidgets import QApplication

    QGuiApplication.setHighDpiScaleFactorRoundingPolicy(Qt.HighDpiScaleFactorRoundingPolicy.PassThrough)
    app = QApplication.instance() or QApplication(sys.argv)
    app.setOrganizationName(ORG)
    app.setApplicationName(APP)
    app.setApplicationDisplayName(APP)
    import qasync

    from fractal_studio.app.main_window import MainWindow

    loop = qasync.QEventLoop(app)
    asyncio.set_event_loop(loop)
    closed = asyncio.Event()
    app.aboutToQuit.connect(closed.set)
    window = MainWindow()
    window.show()
    window.start(image=image, model=_resolve_model(model))
    with loop:
        loop.run_until_complete(closed.wait())
    return 0
