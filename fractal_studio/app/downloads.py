"""Model › Get published models…: the authors' five checkpoints as a table with Download buttons.

One download at a time runs in the background (model/download.py does the work in a worker thread;
the UI only shows its progress): bytes, speed and time left, then the conversion. Cancel, closing
the dialog or quitting keeps the partial download, which the next Download resumes. When a model is
installed it is in the model picker, and Use loads it.
"""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QProgressBar,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from fractal_studio.app.worker import Stream, failure_message
from fractal_studio.model.download import (
    DownloadCancelled,
    DownloadProgress,
    get_model,
    installed_models,
    models_dir,
    partial_downloads,
)
from fractal_studio.model.published import PUBLISHED, format_bytes, format_parameters

COLUMNS = ("Model", "Good for", "Size", "Parameters", "Status", "")
ADVICE = ("For editing photos pick FractalMAR-64 (a 1.7 GB download, the quickest published model; "
          "on a CPU one 64×64 window takes minutes at the paper's settings, seconds with fewer "
          "iterations such as 16,4). The 256×256 models need a GPU to be practical. All five are "
          "ImageNet models: choose “unconditional” in the class list to edit without a class.")


def seconds_text(seconds: float | None) -> str:
    if seconds is None:
        return ""
    seconds = int(round(seconds))
    return f"{seconds // 60}:{seconds % 60:02d} left" if seconds >= 60 else f"{seconds} s left"


def progress_text(name: str, event: DownloadProgress) -> str:
    if event.stage == "convert":
        return f"Converting {name} to a .safetensors model…" if event.total is None else f"Converted {name}"
    total = f" of {format_bytes(event.total)}" if event.total else ""
    parts = [f"Downloading {name}: {format_bytes(event.done)}{total}"]
    if event.speed > 0:
        parts.append(f"{format_bytes(event.speed)}/s")
    left = seconds_text(event.seconds_left)
    if left:
        parts.append(left)
    return " · ".join(parts)


class PublishedModelsDialog(QDialog):
    def __init__(self, window):
        super().__init__(window)
        self.window_ = window  # the MainWindow: its model picker and model loading
        self.setWindowTitle("Published models")
        self.setAccessibleName("Published models")
        self.folder = models_dir()
        self.task: asyncio.Task | None = None
        self.cancel_event: threading.Event | None = None
        self.downloading: str | None = None
        layout = QVBoxLayout(self)
        advice = QLabel(ADVICE)
        advice.setWordWrap(True)
        layout.addWidget(advice)
        self.table = QTableWidget(len(PUBLISHED), len(COLUMNS))
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.verticalHeader().setVisible(False)
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.table.setSelectionMode(QTableWidget.SelectionMode.NoSelection)
        self.table.setWordWrap(True)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        self.buttons: dict[str, QPushButton] = {}
        for row, model in enumerate(PUBLISHED.values()):
            cells = (model.title, model.purpose, format_bytes(model.download_bytes),
                     format_parameters(model.parameters))
            for column, text in enumerate(cells):
                item = QTableWidgetItem(text)
                item.setToolTip(f"{model.title}: {model.resolution}×{model.resolution}, {model.class_num} "
                                f"{model.classes} classes, FID {model.fid:g}\n{model.licence}")
                self.table.setItem(row, column, item)
            self.table.setItem(row, 4, QTableWidgetItem(""))
            button = QPushButton("Download")
            button.setAccessibleName(f"Download {model.title}")
            button.clicked.connect(lambda _=False, name=model.name: self.button_pressed(name))
            self.buttons[model.name] = button
            holder = QWidget()
            box = QHBoxLayout(holder)
            box.setContentsMargins(2, 0, 2, 0)
            box.addWidget(button)
            self.table.setCellWidget(row, 5, holder)
        self.table.resizeRowsToContents()
        layout.addWidget(self.table)
        self.progress = QProgressBar()
        self.progress.setRange(0, 1000)
        self.progress.setVisible(False)
        self.progress_label = QLabel("")
        self.progress_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        layout.addWidget(self.progress)
        layout.addWidget(self.progress_label)
        where = QLabel(f"Installed models live in {self.folder} (set FRACTAL_STUDIO_MODELS to use another "
                       f"folder); `fractal-studio models list` shows them too.")
        where.setWordWrap(True)
        where.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        layout.addWidget(where)
        close = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        close.rejected.connect(self.close)
        layout.addWidget(close)
        self.resize(980, 480)
        self.refresh()

    # ------------------------------------------------------------------------------------ state
    def installed(self) -> dict[str, Path]:
        return {model.name: model.path for model in installed_models(self.folder)}

    def refresh(self) -> None:
        """Each row's status and button from what is on disk (and the download running)."""
        installed, partial = self.installed(), partial_downloads(self.folder)
        for row, model in enumerate(PUBLISHED.values()):
            button = self.buttons[model.name]
            if model.name == self.downloading:
                status, label = "downloading…", "Cancel"
            elif model.name in installed:
                status, label = f"installed ({format_bytes(installed[model.name].stat().st_size)})", "Use"
            elif model.name in partial:
                status = f"{format_bytes(partial[model.name])} of {format_bytes(model.download_bytes)} so far"
                label = "Resume"
            else:
                status, label = "not installed", "Download"
            self.table.item(row, 4).setText(status)
            button.setText(label)
            button.setEnabled(self.downloading is None or model.name == self.downloading)

    def button_pressed(self, name: str) -> None:
        if name == self.downloading:
            self.cancel()
        elif name in self.installed():
            self.window_.load_model_path(str(self.installed()[name]))
        else:
            self.start(name)

    # ---------------------------------------------------------------------------------- running
    def start(self, name: str) -> asyncio.Task | None:
        if self.task is not None and not self.task.done():
            return None
        self.downloading = name
        self.cancel_event = threading.Event()
        self.progress.setVisible(True)
        self.progress.setValue(0)
        self.progress_label.setText(f"Starting the download of {name}…")
        self.refresh()
        self.task = asyncio.ensure_future(self._install(name, self.cancel_event))
        return self.task

    def cancel(self) -> None:
        if self.cancel_event is not None:
            self.cancel_event.set()
            self.progress_label.setText("Cancelling… (the part downloaded so far is kept)")

    async def _install(self, name: str, cancel: threading.Event) -> None:
        folder = self.folder

        def work(emit):
            emit(get_model(name, folder=folder, progress=emit, cancel=cancel))

        message, path = "", None
        progress_only = lambda item: isinstance(item, DownloadProgress)  # noqa: E731 (a newer one replaces it)
        try:
            async with Stream(work, cancel, replaceable=progress_only) as events:
                async for event in events:
                    if isinstance(event, DownloadProgress):
                        self.show_progress(name, event)
                    else:
                        path = event
        except asyncio.CancelledError:  # the window is closing: the partial download stays for later
            cancel.set()
            return
        except DownloadCancelled:
            kept = format_bytes(partial_downloads(folder).get(name, 0))
            message = f"Cancelled. {kept} of {name} are kept: Resume continues from there."
        except Exception as error:  # one line from model/download.py; the app keeps running
            message = f"Could not install {name}: {failure_message(error)}"
        self.downloading = None
        self.progress.setVisible(False)
        if path is not None:
            message = f"Installed {name} in {path}. Use loads it; it is in the model list."
            self.window_.refresh_models()
        self.progress_label.setText(message)
        self.refresh()

    def show_progress(self, name: str, event: DownloadProgress) -> None:
        if event.stage == "convert":
            self.progress.setRange(0, 0 if event.total is None else 1000)  # busy while converting
        elif event.fraction is not None:
            self.progress.setRange(0, 1000)
            self.progress.setValue(int(1000 * min(1.0, event.fraction)))
        self.progress_label.setText(progress_text(name, event))

    def stop(self) -> None:
        """Cancels a running download (kept for resuming); for closing the dialog or the app."""
        if self.task is not None and not self.task.done():
            self.cancel()

    def closeEvent(self, event) -> None:  # noqa: N802
        self.stop()
        super().closeEvent(event)
