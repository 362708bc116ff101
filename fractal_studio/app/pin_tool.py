"""The Pin tool, for MainWindow: colour dots painted inside the mask that the fill keeps exactly.

A click with the Pin tool pins a small dot of the pin colour where the mask is on (editing/pins.py:
the pins are known pixels to the sampler, and every pin pixel comes back bit for bit); Alt+click
takes pins away, Ctrl+click takes the colour under the cursor. The colour button in the tool bar
opens a colour dialog. Pins are undoable, autosaved with the document, and passed to every run.
"""

from __future__ import annotations

from PySide6.QtGui import QColor, QIcon, QPixmap
from PySide6.QtWidgets import QColorDialog, QToolButton

from fractal_studio.editing.windows import Rect


class PinMixin:
    pin_colour: tuple[int, int, int] = (255, 255, 255)

    def _build_pin_button(self) -> QToolButton:
        self.pin_colour_button = QToolButton()
        self.pin_colour_button.setToolTip("Pin colour: the colour the Pin tool paints (Ctrl+click with the "
                                          "Pin tool takes the colour under the cursor)")
        self.pin_colour_button.setAccessibleName("Pin colour")
        self.pin_colour_button.clicked.connect(self.choose_pin_colour)
        self.set_pin_colour(self.pin_colour)
        return self.pin_colour_button

    def set_pin_colour(self, colour) -> None:
        self.pin_colour = tuple(int(c) for c in colour)
        swatch = QPixmap(16, 16)
        swatch.fill(QColor(*self.pin_colour))
        self.pin_colour_button.setIcon(QIcon(swatch))

    def choose_pin_colour(self) -> None:
        chosen = QColorDialog.getColor(QColor(*self.pin_colour), self, "Pin colour")
        if chosen.isValid():
            self.set_pin_colour((chosen.red(), chosen.green(), chosen.blue()))

    def _pin_clicked(self, x: float, y: float, mode: str) -> None:
        doc = self.session.document
        if doc is None or self.session.running:
            return
        if mode == "pick":
            column, row = int(x), int(y)
            if 0 <= row < doc.image.shape[0] and 0 <= column < doc.image.shape[1]:
                self.set_pin_colour(doc.image[row, column])
            return
        changed = self.session.pin((x, y), self.pin_colour, erase=mode == "erase")
        if changed is None and mode == "pin":
            self.status.showMessage("Pins go inside the mask: paint the area to generate first", 4000)

    def clear_pins(self) -> None:
        if self.session.document is not None and self._idle():
            self.session.clear_pins()

    def show_pins(self, rect: Rect | None = None) -> None:
        doc = self.session.document
        if doc is not None:
            self.canvas.show_pins(doc.pins, doc.mask, rect)
