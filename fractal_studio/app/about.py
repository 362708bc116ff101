"""Help › About (version, model, device, versions, folders, licences), the app's icon, and opening
the log folder."""

from __future__ import annotations

import html
import platform
from pathlib import Path

from PySide6.QtCore import Qt, QUrl, qVersion
from PySide6.QtGui import QDesktopServices, QGuiApplication, QIcon
from PySide6.QtWidgets import QDialog, QDialogButtonBox, QHBoxLayout, QLabel, QPushButton, QVBoxLayout

from fractal_studio import __version__, paths
from fractal_studio.desktop import icon_files

PAPER = "Li, Sun, Fan, He, “Fractal Generative Models” (2025), arXiv:2502.17437"


def app_icon() -> QIcon:
    icon = QIcon()
    for path in icon_files().values():
        icon.addFile(str(path))
    return icon


def model_facts(loaded) -> list[tuple[str, str]]:
    """(label, text) lines about the loaded model (None: none loaded) and its licence."""
    if loaded is None:
        return [("Model", "none loaded")]
    from fractal_studio.model.catalog import MODELS_DIR
    from fractal_studio.model.published import LICENCE_NOTE, PUBLISHED

    path = Path(loaded.path)
    config = loaded.model.config
    facts = [("Model", f"{path.stem} ({config.name}, {config.resolution}×{config.resolution}), {path}"),
             ("Device", str(loaded.device))]
    if path.parent.resolve() == MODELS_DIR.resolve():
        card = path.with_suffix(".md")
        facts.append(("Model licence", f"bundled with Fractal Studio, trained by its authors; the training "
                                       f"data and its licences are listed in {card.name} "
                                       f"({card.parent})"))
    elif path.stem in PUBLISHED or config.name in PUBLISHED:
        facts.append(("Model licence", LICENCE_NOTE))
    else:
        facts.append(("Model licence", "a model file from elsewhere: its terms are its author's"))
    return facts


def facts(loaded, device_text: str | None = None) -> list[tuple[str, str]]:
    """Everything the About box says, as (label, text) lines (its Copy button copies them)."""
    import numpy
    import PySide6
    import torch

    lines = [("Version", f"Fractal Studio {__version__}"), *model_facts(loaded)]
    if loaded is None and device_text:
        lines.append(("Device", device_text))
    lines += [
        ("Software", f"Python {platform.python_version()}, PyTorch {torch.__version__}, "
                     f"Qt {qVersion()} (PySide6 {PySide6.__version__}), NumPy {numpy.__version__}"),
        ("System", platform.platform()),
        ("Settings", str(paths.settings_file())),
        ("Data", f"{paths.data_dir()} (autosave, installed models)"),
        ("Logs", str(paths.log_dir())),
        ("Licence", "Fractal Studio is free software under the MIT License, © Fractal Studio authors"),
        ("Libraries", "Qt and PySide6: LGPL-3.0; PyTorch: BSD-3-Clause; NumPy: BSD-3-Clause; "
                      "Pillow: MIT-CMU; OpenCV: Apache-2.0; safetensors: Apache-2.0; qasync: BSD-2-Clause; "
                      "platformdirs: MIT"),
        ("Method", PAPER),
    ]
    return lines


class AboutDialog(QDialog):
    def __init__(self, lines: list[tuple[str, str]], parent=None):
        super().__init__(parent)
        self.setWindowTitle("About Fractal Studio")
        self.lines = lines
        icon = QLabel()
        icon.setPixmap(app_icon().pixmap(96, 96))
        icon.setAlignment(Qt.AlignmentFlag.AlignTop)
        title = QLabel(f"<h2>Fractal Studio {html.escape(__version__)}</h2>"
                       "<p>An image editor whose brush is a fractal generative model.</p>")
        rows = "".join(f"<tr><td style='padding-right:12px; white-space:nowrap'><b>{html.escape(label)}"
                       f"</b></td><td>{html.escape(text)}</td></tr>" for label, text in lines[1:])
        self.details = QLabel(f"<table>{rows}</table>")
        self.details.setWordWrap(True)
        self.details.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.details.setMinimumWidth(560)
        text = QVBoxLayout()
        text.addWidget(title)
        text.addWidget(self.details)
        top = QHBoxLayout()
        top.addWidget(icon)
        top.addLayout(text, 1)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        self.copy_button = QPushButton("Copy details")
        self.copy_button.setToolTip("Copy these lines, e.g. for a bug report")
        self.copy_button.clicked.connect(self.copy)
        self.logs_button = QPushButton("Open log folder")
        self.logs_button.clicked.connect(open_log_folder)
        buttons.addButton(self.copy_button, QDialogButtonBox.ButtonRole.ActionRole)
        buttons.addButton(self.logs_button, QDialogButtonBox.ButtonRole.ActionRole)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(buttons)

    def text(self) -> str:
        return "\n".join(f"{label}: {text}" for label, text in self.lines)

    def copy(self) -> None:
        QGuiApplication.clipboard().setText(self.text())


def open_log_folder() -> bool:
    """Opens the log folder in the file manager (made first, so there is one to open)."""
    folder = paths.log_dir()
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:
        return False
    return QDesktopServices.openUrl(QUrl.fromLocalFile(str(folder)))


def crash_message(report: Path) -> str:
    return (f"Fractal Studio hit an internal error and wrote a report to {report}. The app goes on; "
            "saving your work now (File › Export) is wise. The log folder (Help › Open log folder) holds "
            "the report and the log, to attach to a bug report.")

