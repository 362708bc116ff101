"""Side-panel widgets: parameters, class picker, outpainting/uncrop. They show values and emit intents."""

from __future__ import annotations

import math
import random
from dataclasses import replace

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QSpinBox,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from fractal_studio.app.settings import Params
from fractal_studio.devices import DEVICE_CHOICES
from fractal_studio.editing.options import MAX_SEED, OPTIONS

MARGIN_BOX_MAX = 4096  # the margin's limit depends on the model (half a window): checked at the run


class ParamsPanel(QGroupBox):
    changed = Signal(object)  # Params

    def __init__(self, parent=None):
        super().__init__("Parameters", parent)
        self.defaults = None  # the model's SamplingDefaults
        form = QFormLayout(self)
        # Each control's range, step and tooltip are its option's (editing/options.py).
        self.cfg = _option_double("cfg")
        self.schedule = _choice("cfg_schedule")
        self.temperature = _option_double("temperature")
        self.spread = _option_double("spread")
        self.iterations = QLineEdit()
        self.iterations.setToolTip(_tip("iterations") + " (empty = the model's)")
        self.seed = _option_int("seed")
        self.random_seed = QCheckBox("random")
        self.random_seed.setToolTip("Draw a new seed for every run")
        dice = QToolButton()
        dice.setText("New")
        dice.setToolTip("Draw a random seed now")
        dice.clicked.connect(self.roll)
        seed_row = QHBoxLayout()
        for w in (self.seed, dice, self.random_seed):
            seed_row.addWidget(w)
        self.last_seed = QLabel("last seed: –")
        self.last_seed.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.candidates = _option_int("candidates")
        self.margin = _option_int("margin", high=MARGIN_BOX_MAX)
        self.margin.setToolTip(_tip("margin") + "; 0 = auto")
        self.margin.setSpecialValueText("auto")
        self.feather = _option_int("feather")
        self.seamless = _check("seamless")
        self.detail = _check("detail")
        self.detail_spread = _option_double("detail_spread")
        self.device = QComboBox()
        self.device.addItems(DEVICE_CHOICES)
        self.device.setToolTip("Compute device (auto picks CUDA, then Apple MPS, then CPU)")
        self.precision = _choice("precision")
        self.precision.setAccessibleName(OPTIONS["precision"].title)
        reset = QPushButton("Reset to model defaults")
        reset.clicked.connect(self.reset)
        # The controls of every run first (they fit on a 1366x768 screen), the finer ones after.
        form.addRow("Guidance", self.cfg)
        form.addRow("Temperature", self.temperature)
        form.addRow("Spread", self.spread)
        form.addRow("Seed", seed_row)
        form.addRow("", self.last_seed)
        form.addRow("Candidates", self.candidates)
        form.addRow("", self.seamless)
        form.addRow("", self.detail)
        form.addRow("Detail spread", self.detail_spread)
        form.addRow("Schedule", self.schedule)
        form.addRow("Iterations", self.iterations)
        form.addRow("Margin", self.margin)
        form.addRow("Feather", self.feather)
        form.addRow("Device", self.device)
        form.addRow("Precision", self.precision)
        form.addRow(reset)
        for w in (self.cfg, self.temperature, self.spread, self.seed, self.candidates, self.margin,
                  self.feather, self.detail_spread):
            w.valueChanged.connect(self._emit)
        for w in (self.schedule, self.device, self.precision):
            w.currentTextChanged.connect(self._emit)
        self.iterations.editingFinished.connect(self._emit)
        self.random_seed.toggled.connect(self._emit)
        self.seamless.toggled.connect(self._emit)
        self.detail.toggled.connect(self._emit)
        self.detail.toggled.connect(self._show_detail)
        self._quiet = False

    def set_defaults(self, sampling) -> None:
        self.defaults = sampling
        self.iterations.setPlaceholderText(",".join(str(i) for i in sampling.iterations))
        self._show_detail()

    def _detail_default(self) -> float | None:
        """The model's detail spread; None for a model that does not fill coarse to fine."""
        return None if self.defaults is None else self.defaults.detail_spread

    def _show_detail(self) -> None:
        """The detail controls are for models that fill coarse to fine; the spread only while on."""
        supported = self._detail_default() is not None
        self.detail.setEnabled(supported)
        self.detail_spread.setEnabled(supported and self.detail.isChecked())
        if not supported:
            self.detail.setToolTip("This model does not fill coarse to fine")

    def set_params(self, params: Params) -> None:
        d = self.defaults
        self._quiet = True
        self.cfg.setValue(params.cfg if params.cfg is not None else (d.cfg if d else 1.0))
        self.schedule.setCurrentText(params.cfg_schedule or (d.cfg_schedule if d else "linear"))
        self.temperature.setValue(params.temperature if params.temperature is not None else
                                  (d.temperature if d else 1.0))
        self.spread.setValue(params.spread if params.spread is not None else (d.spread if d else 1.0))
        self.iterations.setText(params.iterations)
        self.seed.setValue(params.seed)
        self.random_seed.setChecked(params.random_seed)
        self.candidates.setValue(params.candidates)
        self.margin.setValue(params.margin)
        self.feather.setValue(params.feather)
        self.seamless.setChecked(params.seamless)
        self.detail.setChecked(params.detail)
        shown = params.detail_spread if params.detail_spread is not None else self._detail_default()
        self.detail_spread.setValue(0.0 if shown is None else shown)
        self.device.setCurrentText(params.device)
        self.precision.setCurrentText(params.precision)
        self._quiet = False

    def params(self) -> Params:
        d = self.defaults

        schedule = self.schedule.currentText()

        def unless_default(value, default):
            return None if d is not None and abs(value - default) < 1e-9 else value

        detail_default = self._detail_default()
        return Params(
            cfg=unless_default(self.cfg.value(), d.cfg if d else -1),
            cfg_schedule=None if d and schedule == d.cfg_schedule else schedule,
            temperature=unless_default(self.temperature.value(), d.temperature if d else -1),
            spread=unless_default(self.spread.value(), d.spread if d else -1),
            iterations=self.iterations.text().strip(), seed=self.seed.value(),
            random_seed=self.random_seed.isChecked(), candidates=self.candidates.value(),
            margin=self.margin.value(), feather=self.feather.value(), seamless=self.seamless.isChecked(),
            detail=self.detail.isChecked(),
            # A model without coarse to fine has no detail spread to keep (None: the next model's own).
            detail_spread=None if detail_default is None else unless_default(self.detail_spread.value(),
                                                                             detail_default),
            device=self.device.currentText(), precision=self.precision.currentText())

    def reset(self) -> None:
        keep = self.params()
        self.set_params(replace(Params(), seed=keep.seed, random_seed=keep.random_seed, device=keep.device,
                                precision=keep.precision))
        self._emit()

    def roll(self) -> None:
        self.seed.setValue(random.randint(0, MAX_SEED))

    def seed_for_run(self) -> int:
        """A fresh seed when "random" is ticked (shown in the box), else the fixed one."""
        if self.random_seed.isChecked():
            self._quiet = True
            self.roll()
            self._quiet = False
        self.last_seed.setText(f"last seed: {self.seed.value()}")
        return self.seed.value()

    def _emit(self, *_) -> None:
        if not self._quiet:
            self.changed.emit(self.params())


class ClassPicker(QGroupBox):
    """Type-ahead list of the model's classes; "unconditional" first, recent classes next."""

    classChanged = Signal(object)  # int or None

    def __init__(self, parent=None):
        super().__init__("Class", parent)
        layout = QVBoxLayout(self)
        self.search = QLineEdit()
        self.search.setPlaceholderText("Search classes (name or number)…")
        self.search.setClearButtonEnabled(True)
        self.list = QListWidget()
        self.list.setMinimumHeight(100)
        self.list.setMaximumHeight(150)  # about seven rows: the parameters below stay in view
        self.note = QLabel()
        self.note.setWordWrap(True)
        self.note.setVisible(False)
        layout.addWidget(self.search)
        layout.addWidget(self.list)
        layout.addWidget(self.note)
        self.search.textChanged.connect(self._filter)
        self.search.returnPressed.connect(self._pick_first)
        self.list.currentItemChanged.connect(self._picked)
        self.names: list[str] = []
        self.recent: list[int] = []

    def set_classes(self, names: list[str], conditional: bool, recent: list[int] | None = None) -> None:
        self.names = list(names)
        self.recent = [r for r in (recent or []) if 0 <= r < len(names)]
        self._fill()
        enabled = conditional and bool(names)
        self.search.setEnabled(enabled)
        self.list.setEnabled(enabled)
        self.search.setVisible(enabled)
        self.list.setVisible(enabled)
        self.note.setVisible(not enabled)
        self.note.setText("This model is unconditional (trained without classes): it generates without a "
                          "class." if names else "Load a model to choose a class.")
        self.setToolTip("" if enabled else self.note.text())

    def set_recent(self, recent: list[int]) -> None:
        """Updates the recent classes at the top of the list, keeping the current choice."""
        current = self.current()
        self.recent = [r for r in recent if 0 <= r < len(self.names)]
        self._fill()
        self._filter(self.search.text())
        self.list.blockSignals(True)
        self.select(current)
        self.list.blockSignals(False)

    def _fill(self) -> None:
        self.list.blockSignals(True)
        self.list.clear()
        self._add("unconditional", None)
        for index in self.recent:
            self._add(f"★ {index}: {self.names[index]}", index, recent=True)
        for index, name in enumerate(self.names):
            if index not in self.recent:  # listed once: a recent class stays at the top
                self._add(f"{index}: {name}", index)
        self.list.setCurrentRow(0)
        self.list.blockSignals(False)

    def _add(self, text: str, value, recent: bool = False) -> None:
        item = QListWidgetItem(text)
        item.setData(Qt.ItemDataRole.UserRole, value)
        item.setData(Qt.ItemDataRole.UserRole + 1, recent)
        if recent:
            item.setToolTip("recently used")
        self.list.addItem(item)

    def _filter(self, text: str) -> None:
        needle = text.strip().lower()
        for row in range(self.list.count()):
            item = self.list.item(row)
            value = item.data(Qt.ItemDataRole.UserRole)
            if not needle:
                hidden = False
            elif value is None:
                hidden = needle not in "unconditional"
            else:
                hidden = not (needle in self.names[value].lower() or needle == str(value))
            item.setHidden(hidden)
        current = self.list.currentItem()
        if needle and (current is None or current.isHidden()):
            self._pick_first()  # typing chooses the first match at once

    def _pick_first(self) -> None:
        for row in range(self.list.count()):
            if not self.list.item(row).isHidden():
                self.list.setCurrentRow(row)
                return

    def _picked(self, item, _previous=None) -> None:
        if item is not None:
            self.classChanged.emit(item.data(Qt.ItemDataRole.UserRole))

    def current(self) -> int | None:
        item = self.list.currentItem()
        return None if item is None or not self.list.isEnabled() else item.data(Qt.ItemDataRole.UserRole)

    def select(self, class_id: int | None) -> None:
        for row in range(self.list.count()):
            if self.list.item(row).data(Qt.ItemDataRole.UserRole) == class_id:
                self.list.setCurrentRow(row)
                return


class TaskPanel(QGroupBox):
    """Outpainting and uncrop: presets, numeric entry; inpainting needs only the mask."""

    extendRequested = Signal(int, int, int, int)
    uncropRequested = Signal(float)

    def show_drag(self, left: int, top: int, right: int, bottom: int) -> None:
        """Shows a border drag's growth in the side boxes while it lasts."""
        for box, value in zip(self.sides.values(), (left, top, right, bottom), strict=True):
            box.setValue(value)

    def __init__(self, parent=None):
        super().__init__("Extend canvas / uncrop", parent)
        grid = QGridLayout(self)
        self.sides = {}
        for col, side in enumerate(("left", "top", "right", "bottom")):
            box = _int(0, 20000, f"Pixels to add on the {side}")
            self.sides[side] = box
            grid.addWidget(QLabel(side), 0, col)
            grid.addWidget(box, 1, col)
        extend = QPushButton("Extend")
        extend.setToolTip("Add the new area (shown as a checkerboard, to be generated); "
                          "or drag a canvas border outward")
        extend.clicked.connect(lambda: self.extendRequested.emit(*(b.value() for b in self.sides.values())))
        grid.addWidget(extend, 2, 0, 1, 4)
        presets = QHBoxLayout()
        for scale in (1.25, 1.5, 2.0):
            button = QPushButton(f"{scale:g}×")
            button.setToolTip(f"Uncrop: grow the canvas {scale:g}× around the image and generate the border")
            button.clicked.connect(lambda _=False, s=scale: self.uncropRequested.emit(s))
            presets.addWidget(button)
        self.scale = _double(1.05, 4.0, 0.05, "Uncrop scale")
        self.scale.setValue(1.5)
        go = QPushButton("Uncrop")
        go.clicked.connect(lambda: self.uncropRequested.emit(self.scale.value()))
        presets.addWidget(self.scale)
        presets.addWidget(go)
        holder = QWidget()
        holder.setLayout(presets)
        grid.addWidget(holder, 3, 0, 1, 4)


def _tip(name: str) -> str:
    help = OPTIONS[name].help
    return help[0].upper() + help[1:]


def _option_double(name: str) -> QDoubleSpinBox:
    option = OPTIONS[name]
    box = QDoubleSpinBox()
    box.setDecimals(max(2, math.ceil(-math.log10(option.low))) if option.low else 2)
    box.setRange(option.low, option.high)
    box.setSingleStep(option.step)
    box.setToolTip(_tip(name))
    return box


def _option_int(name: str, high: int | None = None) -> QSpinBox:
    option = OPTIONS[name]
    box = QSpinBox()  # 32-bit: the options' whole numbers fit it (MAX_SEED is 2**31 - 1)
    box.setRange(int(option.low), int(option.high if high is None else high))
    box.setToolTip(_tip(name))
    return box


def _choice(name: str) -> QComboBox:
    box = QComboBox()
    box.addItems(OPTIONS[name].choices)
    box.setToolTip(_tip(name))
    return box


def _check(name: str) -> QCheckBox:
    box = QCheckBox(OPTIONS[name].title)
    box.setToolTip(_tip(name))
    return box


def _double(low: float, high: float, step: float, tip: str) -> QDoubleSpinBox:
    box = QDoubleSpinBox()
    box.setRange(low, high)
    box.setSingleStep(step)
    box.setDecimals(2)
    box.setToolTip(tip)
    return box


def _int(low: int, high: int, tip: str) -> QSpinBox:
    box = QSpinBox()
    box.setRange(low, high)
    box.setToolTip(tip)
    return box
