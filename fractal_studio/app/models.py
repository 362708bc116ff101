"""Model menu and panel: bundled models, opening a .safetensors file, converting a published .pth."""

from __future__ import annotations

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

from fractal_studio.app.worker import Job
from fractal_studio.devices import pick_device

MODELS_DIR = Path(__file__).resolve().parents[2] / "models"
DEFAULT_MODEL = "photo_64.safetensors"
NO_MODEL_HELP = (
    "No model is loaded. The bundled models live in {folder} (the default is {default}). "
    "Use Model ▸ Open model file… to open a .safetensors model, or Model ▸ Convert published "
    "checkpoint… to convert a FractalAR/FractalMAR .pth (or run `fractal-studio convert`).")


def bundled_models(folder: Path = MODELS_DIR) -> list[Path]:
    if not folder.is_dir():
        return []
    models = sorted(folder.glob("*.safetensors"))
    models.sort(key=lambda p: p.name != DEFAULT_MODEL)
    return models


class ModelPanel(QGroupBox):
    modelRequested = Signal(str)

    def __init__(self, parent=None):
        super().__init__("Model", parent)
        layout = QVBoxLayout(self)
        self.combo = QComboBox()
        self.combo.setToolTip("Bundled models (models/*.safetensors) and recently opened ones")
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
        self.combo.setPlaceholderText("Choose a model…" if paths else "No model in models/")
        self.combo.blockSignals(False)


class ModelMixin:
    """Loading and converting models for MainWindow (runs the slow parts in a worker thread)."""

    def refresh_models(self) -> None:
        self.model_panel.set_models(bundled_models(self.models_dir) + [
            Path(p) for p in self.store.recent("recent/models") if Path(p).parent != self.models_dir
            and Path(p).is_file()], self.model_path)
        if self.model is None:
            self.model_panel.info.setText(NO_MODEL_HELP.format(folder=self.models_dir, default=DEFAULT_MODEL))

    def open_model_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open model", str(self.models_dir),
                                              "Fractal Studio models (*.safetensors)")
        if path:
            self.load_model_path(path)

    def load_model_path(self, path: str) -> None:
        if not path:
            return
        if self.model_job is not None and self.model_job.running:
            return
        device_choice = self.params_panel.device.currentText()

        def work(_cancel):
            from fractal_studio.model.weights import file_hash, load_model
            from fractal_studio.sampling import prepare_sampling

            device = pick_device(device_choice)
            model = load_model(path, device)
            prepare_sampling(model)  # the CPU twin, built here rather than at the first run
            return path, model, file_hash(path), device

        self.status.showMessage(f"Loading {Path(path).name}…")
        self.model_job = Job(work, self)
        self.model_job.done.connect(self._model_loaded)
        self.model_job.failed.connect(self._model_failed)
        self.model_job.start()

    def _model_loaded(self, outcome) -> None:
        path, model, digest, device = outcome
        self.model, self.model_path, self.model_hash, self.device = model, path, digest, device
        config = model.config
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
        self.status.showMessage("Model not loaded", 4000)
        self.show_error("Could not load the model", message)
        self.refresh_models()

    def convert_dialog(self) -> None:
        src, _ = QFileDialog.getOpenFileName(self, "Published checkpoint", "",
                                             "PyTorch checkpoints (*.pth *.pt)")
        if not src:
            return
        option, ok = QInputDialog.getText(
            self, "Configuration", "Preset name or config.json path (empty = read from the checkpoint):")
        if not ok:
            return
        dst, _ = QFileDialog.getSaveFileName(self, "Save converted model",
                                             str(self.models_dir / (Path(src).stem + ".safetensors")),
                                             "Fractal Studio models (*.safetensors)")
        if dst:
            self.convert(src, dst, option.strip() or None)

    def convert(self, src: str, dst: str, option: str | None = None) -> Job:
        def work(_cancel):
            from fractal_studio.model.convert import convert_checkpoint

            convert_checkpoint(src, dst, option, log=job.event.emit)
            return dst

        job = Job(work, self)
        job.event.connect(self._convert_log)
        job.done.connect(self._converted)
        job.failed.connect(self._convert_failed)
        self.progress.setRange(0, 0)
        self.progress.setVisible(True)
        self.convert_job = job
        job.start()
        return job

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
