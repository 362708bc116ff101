"""Model menu and panel: bundled models, opening a .safetensors file, converting a published .pth."""

from __future__ import annotations

import asyncio
from pathlib import Path

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QComboBox,
    QFileDialog,
    QGroupBox,
    QInputDialog,
    QLabel,
    QPushButton,
    QVBoxLayout,
)

from fractal_studio.app.worker import Stream, ask, call, failure_message
from fractal_studio.editing.session import LoadedModel
from fractal_studio.errors import UnknownModel
from fractal_studio.model.catalog import DEFAULT_MODEL, SUFFIX, available_models

NO_MODEL_HELP = (
    "No model is loaded. The bundled models live in {folder} (the default is {default}). "
    "Use Model ▸ Open model file… to open a .safetensors model, or Model ▸ Convert published "
    "checkpoint… to convert a FractalAR/FractalMAR .pth (or run `fractal-studio convert`).")


class ModelPanel(QGroupBox):
    modelRequested = Signal(str)

    def __init__(self, parent=None):
        super().__init__("Model", parent)
        layout = QVBoxLayout(self)
        self.combo = QComboBox()
        self.combo.setToolTip("Bundled and installed models, and recently opened ones")
        self.combo.activated.connect(lambda i: self.modelRequested.emit(self.combo.itemData(i) or ""))
        self.info = QLabel()
        self.info.setWordWrap(True)
        open_button = QPushButton("Open model file…")
        open_button.setToolTip("Open a Fractal Studio .safetensors model")
        self.open_button = open_button
        layout.addWidget(self.combo)
        layout.addWidget(self.info)
        layout.addWidget(open_button)

    def set_models(self, paths: list[Path], current: str | None) -> None:
        self.combo.blockSignals(True)
        self.combo.clear()
        for path in paths:
            self.combo.addItem(path.stem, str(path))
            self.combo.setItemData(self.combo.count() - 1, str(path), 3)  # tooltip role
        if current:
            index = self.combo.findData(current)
            if index < 0:
                self.combo.addItem(Path(current).stem, current)
                index = self.combo.count() - 1
            self.combo.setCurrentIndex(index)
        else:
            self.combo.setCurrentIndex(-1)
        self.combo.setPlaceholderText("Choose a model…" if paths else "No model found")
        self.combo.blockSignals(False)


class ModelMixin:
    """Loading and converting models for MainWindow (runs the slow parts in a worker thread)."""

    def refresh_models(self) -> None:
        """The picker: bundled models, installed published ones, then recently opened files."""
        listed = [model.path for model in available_models(self.models_dir)]
        recent = [Path(p) for p in self.store.recent("recent/models") if Path(p).is_file()]
        self.model_panel.set_models(listed + [p for p in recent if p not in listed], self.model_path)
        if self.model is None:
            self.model_panel.info.setText(NO_MODEL_HELP.format(folder=self.models_dir,
                                                               default=DEFAULT_MODEL + SUFFIX))

    def show_published_models(self):
        """Model › Get published models…: one dialog, kept between showings (closing it stops a
        download, which its next Resume continues)."""
        from fractal_studio.app.downloads import PublishedModelsDialog

        if self.published_dialog is None:
            self.published_dialog = PublishedModelsDialog(self)
        self.published_dialog.refresh()
        self.published_dialog.show()
        self.published_dialog.raise_()
        return self.published_dialog

    def open_model_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open model", str(self.models_dir),
                                              "Fractal Studio models (*.safetensors)")
        if path:
            self.load_model_path(path)

    # The loaded model lives in the session; these read it.
    @property
    def model(self):
        return None if self.session.loaded is None else self.session.loaded.model

    @property
    def model_path(self) -> str | None:
        return None if self.session.loaded is None else self.session.loaded.path

    @property
    def model_hash(self) -> str | None:
        return None if self.session.loaded is None else self.session.loaded.sha256

    def load_model_path(self, path: str) -> asyncio.Task | None:
        """Loads a model file in the background; returns the task (None: nothing to do now)."""
        if not path or (self.model_loading is not None and not self.model_loading.done()):
            return None
        if self.session.running:
            self.status.showMessage("Wait for the run to finish or cancel it (Esc) before changing models",
                                    4000)
            return None
        self.status.showMessage(f"Loading {Path(path).name}…")
        if self.model is None:  # not "no model is loaded" while the first one loads (at start-up)
            self.model_panel.info.setText(f"Loading {Path(path).stem}…")
        device = self.params_panel.device.currentText()
        self.model_loading = asyncio.ensure_future(self._load_model(path, device))
        return self.model_loading

    async def _load_model(self, path: str, device: str) -> None:
        try:
            loaded = await call(LoadedModel.load, path, device)
        except asyncio.CancelledError:  # the window closed meanwhile
            return
        except Exception as error:  # shown to the user; the app keeps running
            self._model_failed(failure_message(error))
            return
        if self.session.running:  # a run started meanwhile keeps its model; this one is not used
            self._model_failed("a run started while the model was loading; load it again afterwards")
            return
        self.session.set_model(loaded)
        self._model_loaded()

    def _model_loaded(self) -> None:
        loaded = self.session.loaded
        path, device = loaded.path, loaded.device
        config = loaded.model.config
        self.store.set("model/last", path)
        self.store.push_recent("recent/models", path)
        self.params_panel.set_defaults(config.sampling)
        self.params_panel.set_params(self.store.load_params(config.name))
        names = [config.class_name(i) for i in range(config.class_num)]
        recent = [int(v) for v in self.store.recent(f"recent/classes/{config.name}") if str(v).isdigit()]
        self.class_picker.set_classes(names, config.conditional, recent)
        self.model_panel.info.setText(
            f"{config.name}: {config.resolution}×{config.resolution} px, {len(config.levels)} levels, "
            f"{config.class_num if config.conditional else 'no'} classes")
        self.refresh_models()
        self.model_label.setText(f"Model: {Path(path).stem}")
        self.device_label.setText(f"Device: {device}")
        self.status.showMessage(f"Loaded {Path(path).name}", 4000)
        self.update_actions()

    def _model_failed(self, message: str) -> None:
        still = f"; still using {Path(self.model_path).stem}" if self.model is not None else ""
        self.status.showMessage(f"Model not loaded{still}", 6000)
        self.show_error("Could not load the model", message)
        self.refresh_models()

    def convert_dialog(self) -> None:
        src, _ = QFileDialog.getOpenFileName(self, "Published checkpoint", "",
                                             "PyTorch checkpoints (*.pth *.pt)")
        if not src:
            return
        option = self.ask_model_preset(src, "Which model is it? (Published checkpoints name their own.)",
                                       from_checkpoint=True)
        if option is False:
            return
        dst, _ = QFileDialog.getSaveFileName(self, "Save converted model",
                                             str(self.models_dir / (Path(src).stem + ".safetensors")),
                                             "Fractal Studio models (*.safetensors)")
        if dst:
            self.convert(src, dst, option)

    def ask_model_preset(self, src: str, question: str, from_checkpoint: bool = False):
        """A preset name, a config.json path, None (read it from the checkpoint) or False (cancelled)."""
        from fractal_studio.model.config import PRESETS

        own, other = "As the checkpoint says", "A config.json file…"
        choices = ([own] if from_checkpoint else []) + list(PRESETS) + [other]
        choice, ok = QInputDialog.getItem(self, f"Convert {Path(src).name}", question, choices, 0, False)
        if not ok:
            return False
        if choice == other:
            path, _ = QFileDialog.getOpenFileName(self, "Model configuration", str(Path(src).parent),
                                                  "JSON (*.json)")
            return path or False
        return None if choice == own else choice

    def convert(self, src: str, dst: str, option: str | None = None) -> asyncio.Task:
        """Converts a published checkpoint in the background, showing its log; loads the result."""
        self.progress.setRange(0, 0)
        self.progress.setVisible(True)
        self.converting = asyncio.ensure_future(self._convert(src, dst, option))
        return self.converting

    async def _convert(self, src: str, dst: str, option: str | None) -> None:
        def work(emit):
            from fractal_studio.model.convert import convert_checkpoint

            convert_checkpoint(src, dst, option, log=emit)

        try:
            async with Stream(work) as log:
                async for message in log:
                    self._convert_log(message)
        except asyncio.CancelledError:  # the window closed meanwhile (the file is still written)
            return
        except UnknownModel:  # the checkpoint does not say: ask, in the app's words, and try again
            option = await ask(lambda: self.ask_model_preset(
                src, "This checkpoint does not say which published model it is. Choose its preset:"))
            if option is False or option is None:
                self._convert_failed("The checkpoint's model is unknown; choose its preset to convert it.")
                return
            await self._convert(src, dst, option)
            return
        except Exception as error:  # shown to the user; the app keeps running
            self._convert_failed(failure_message(error))
            return
        self._converted(dst)

    def _convert_log(self, message) -> None:
        self.status.showMessage(f"Converting: {message}")

    def _converted(self, dst) -> None:
        self._end_busy()
        self.status.showMessage(f"Converted to {dst}", 5000)
        self.load_model_path(dst)

    def _convert_failed(self, message: str) -> None:
        self._end_busy()
        self.show_error("Conversion failed", message)

    def _end_busy(self) -> None:
        self.progress.setRange(0, 1000)
        self.progress.setVisible(False)
