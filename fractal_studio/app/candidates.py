"""The candidates strip: thumbnails of a run's results; click to preview, apply one, compare, show changes."""

from __future__ import annotations

import cv2
import numpy as np
from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QIcon, QImage, QPixmap
from PySide6.QtWidgets import (
    QCheckBox,
    QDoubleSpinBox,
    QGroupBox,
    QHBoxLayout,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QVBoxLayout,
)

from fractal_studio.editing.uncertainty import DEFAULT_QUANTILE
from fractal_studio.editing.windows import Rect

THUMB = 96


def thumbnail_rect(box: Rect, size: tuple[int, int]) -> Rect:
    """The generated area with a quarter of its size as context on each side, inside the image."""
    return Rect.spanning(
        max(box.left - box.width // 4, 0), max(box.top - box.height // 4, 0),
        min(box.right + box.width // 4, size[0]), min(box.bottom + box.height // 4, size[1]))


def thumbnail(pixels: np.ndarray) -> QPixmap:
    """A THUMB-sized picture of `pixels`."""
    h, w = pixels.shape[:2]
    scale = THUMB / max(h, w)
    if scale < 1:
        pixels = cv2.resize(pixels, (max(1, round(w * scale)), max(1, round(h * scale))),
                            interpolation=cv2.INTER_AREA)
    return pixmap_from_rgb(pixels)


def pixmap_from_rgb(pixels: np.ndarray) -> QPixmap:
    pixels = np.ascontiguousarray(pixels)
    h, w = pixels.shape[:2]
    image = QImage(pixels.data, w, h, w * 3, QImage.Format.Format_RGB888)
    return QPixmap.fromImage(image.copy())


class CandidateStrip(QGroupBox):
    previewRequested = Signal(int)  # -1 = back to the document
    applyRequested = Signal(int)
    compareToggled = Signal(bool)
    changedToggled = Signal(bool)
    varyRequested = Signal()
    rerollRequested = Signal()

    def __init__(self, parent=None):
        super().__init__("Candidates", parent)
        layout = QHBoxLayout(self)
        self.list = QListWidget()
        self.list.setViewMode(QListWidget.ViewMode.IconMode)
        self.list.setFlow(QListWidget.Flow.LeftToRight)
        self.list.setWrapping(False)
        self.list.setMovement(QListWidget.Movement.Static)
        self.list.setIconSize(QSize(THUMB, THUMB))
        self.list.setFixedHeight(THUMB + 34)
        self.setMaximumHeight(THUMB + 80)
        self.list.setToolTip("Click a candidate to preview it on the canvas; double-click to apply it")
        self.list.currentRowChanged.connect(self.previewRequested)
        self.list.itemDoubleClicked.connect(lambda item: self.applyRequested.emit(self.list.row(item)))
        layout.addWidget(self.list, 1)
        row = QVBoxLayout()
        self.apply = QPushButton("Apply")
        self.apply.setToolTip("Apply the selected candidate to the image (undoable)")
        self.apply.clicked.connect(lambda: self.applyRequested.emit(max(self.list.currentRow(), 0)))
        self.compare = QPushButton("Compare")
        self.compare.setToolTip("Hold to show the original (or hold \\ or C)")
        self.compare.pressed.connect(lambda: self.compareToggled.emit(True))
        self.compare.released.connect(lambda: self.compareToggled.emit(False))
        self.changed = QCheckBox("changed pixels")
        self.changed.setToolTip("Overlay every pixel that differs from the original "
                                "(none outside the mask)")
        self.changed.toggled.connect(self.changedToggled)
        self.vary = QPushButton("Vary detail")
        self.vary.setToolTip("Redraw the candidates' fine detail, keeping their layout: the model's top "
                             "level gives the same outputs, the levels below draw anew")
        self.vary.clicked.connect(self.varyRequested)
        self.reroll = QPushButton("Re-roll unsure")
        self.reroll.setToolTip("Draw the previewed candidate's least sure patches again, the rest of it kept "
                               "exactly; the result is a new candidate (Ctrl+Z takes it away)")
        self.reroll.clicked.connect(self.rerollRequested)
        self.unsure_quantile = QDoubleSpinBox()
        self.unsure_quantile.setRange(0.0, 0.99)
        self.unsure_quantile.setSingleStep(0.05)
        self.unsure_quantile.setDecimals(2)
        self.unsure_quantile.setValue(DEFAULT_QUANTILE)
        self.unsure_quantile.setPrefix("above ")
        self.unsure_quantile.setToolTip("Re-roll the patches less sure than this share of the candidate's "
                                        "patches (0.80: the least sure fifth)")
        self.discard = QPushButton("Discard")
        self.discard.setToolTip("Drop these candidates and show the document again")
        for w in (self.apply, self.compare, self.changed, self.vary, self.reroll, self.unsure_quantile,
                  self.discard):
            row.addWidget(w)
        row.addStretch(1)
        layout.addLayout(row)
        self.set_candidates([])

    def set_candidates(self, candidates, bits=None) -> None:
        """Thumbnails of a run's candidates (CandidateImages): of the area they differ in, with some
        context around it, read from their crops (no full-size image is composed). bits: the model's
        bits per generated value of each (best first), shown under each."""
        self.list.blockSignals(True)
        self.list.clear()
        if len(candidates):
            height, width = candidates.base.shape[:2]
            area = thumbnail_rect(candidates.box, (width, height))
        for index in range(len(candidates)):
            icon = QIcon(thumbnail(candidates.view(index, area)))
            label = f"#{index + 1}" if bits is None else f"#{index + 1} · {bits[index]:.2f} bits"
            item = QListWidgetItem(icon, label)
            if bits is not None:
                item.setToolTip("The model's cost of this fill given what is around it, in bits per "
                                "generated R, G, B value: lower is more likely. Candidates come best first.")
            self.list.addItem(item)
        if not candidates:
            self.list.addItem(QListWidgetItem("The candidates of a run appear here (Ctrl+Enter generates)"))
            self.list.item(0).setFlags(Qt.ItemFlag.NoItemFlags)
        self.list.blockSignals(False)
        has = bool(candidates)
        for w in (self.apply, self.compare, self.changed, self.vary, self.reroll, self.unsure_quantile,
                  self.discard):
            w.setEnabled(has)
        if has:
            self.list.setCurrentRow(0)
        else:
            self.changed.setChecked(False)

    def current(self) -> int:
        return self.list.currentRow() if self.apply.isEnabled() else -1
