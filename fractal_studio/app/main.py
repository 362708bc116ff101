"""Starts the Qt application."""

from __future__ import annotations

import sys


def launch(image: str | None = None, model: str | None = None) -> int:
    from PySide6.QtWidgets import QApplication, QLabel, QMainWindow

    app = QApplication.instance() or QApplication(sys.argv)
    window = QMainWindow()
    window.setWindowTitle("Fractal Studio")
    window.setCentralWidget(QLabel("Fractal Studio"))
    window.resize(1200, 800)
    window.show()
    return app.exec()
