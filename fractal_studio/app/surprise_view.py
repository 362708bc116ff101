"""View › Surprise map and Mask › Select surprising regions…, for MainWindow.

The map (editing/surprise.py) is computed in a worker thread with its progress in the status bar,
once per image: it is kept while the document's image is the same array (any edit makes a new one).
It shows as a heat overlay over the image; selecting turns the pixels above a threshold into the
mask (an undoable mask step), ready to inpaint.
"""

from __future__ import annotations

import asyncio

import numpy as np
from PySide6.QtWidgets import QInputDialog

from fractal_studio.app.layers import heat_overlay
from fractal_studio.app.worker import Stream, failure_message

HEAT_SCALE_BITS = 12.0  # the brightest colour of the overlay, in bits per dimension


class SurpriseMixin:
    surprise_cache: tuple[object, object, np.ndarray] | None = None  # (image, model, bits)
    surprise_task: asyncio.Task | None = None

    def surprise_bits(self) -> np.ndarray | None:
        """The map of the current image by the current model, if computed."""
        cached = self.surprise_cache
        doc = self.session.document
        if cached is None or doc is None or cached[0] is not doc.image or cached[1] is not self.model:
            return None
        return cached[2]

    def compute_surprise(self) -> asyncio.Task | None:
        """Starts computing the map in the background (None: there is no image or model, or it is
        being computed); the task's result is the map."""
        if self.session.document is None or self.model is None:
            self.show_info("Surprise map", "Open an image and load a model first.")
            return None
        if self.surprise_task is not None and not self.surprise_task.done():
            return None
        self.surprise_task = asyncio.ensure_future(self._compute_surprise(self.session.doc.image, self.model))
        return self.surprise_task

    async def _compute_surprise(self, image: np.ndarray, model) -> np.ndarray | None:
        from fractal_studio.editing.surprise import surprise_map

        def work(emit):
            bits, _ = surprise_map(model, image, progress=emit)
            emit(bits)

        bits = None
        self.status.showMessage("Surprise map: starting…")
        try:
            async with Stream(work, replaceable=lambda item: isinstance(item, float)) as events:
                async for event in events:
                    if isinstance(event, float):
                        self.status.showMessage(f"Surprise map: {event:.0%}")
                    else:
                        bits = event
        except asyncio.CancelledError:  # the window is closing
            return None
        except Exception as error:  # shown to the user; the app keeps running
            self.show_error("Surprise map", failure_message(error))
            return None
        self.surprise_cache = (image, model, bits)
        self.status.showMessage(f"Surprise map: mean {bits.mean():.2f}, highest {bits.max():.2f} bits per "
                                f"value", 8000)
        return bits

    def show_surprise_map(self, on: bool) -> asyncio.Task | None:
        """View › Surprise map: the heat overlay on (computing the map first if needed) or off."""
        if not on:
            self.canvas.heat_item.setVisible(False)
            return None
        bits = self.surprise_bits()
        if bits is not None:
            self._show_heat(bits)
            return None
        task = self.compute_surprise()
        if task is not None:
            task.add_done_callback(lambda done: self._heat_ready(done))
        return task

    def _heat_ready(self, task: asyncio.Task) -> None:
        if task.cancelled() or task.result() is None:
            self.surprise_action.setChecked(False)
            return
        if self.surprise_action.isChecked():
            self._show_heat(task.result())

    def _show_heat(self, bits: np.ndarray) -> None:
        self.canvas.heat_item.set_buffer(heat_overlay(bits, HEAT_SCALE_BITS))
        self.canvas.heat_item.setPos(0, 0)
        self.canvas.heat_item.setVisible(True)

    def select_surprising(self, threshold: float | None = None) -> asyncio.Task | None:
        """Mask › Select surprising regions…: the mask becomes the pixels whose surprise is above a
        threshold (asked, starting at the map's 98th percentile), computing the map if needed."""
        return asyncio.ensure_future(self._select_surprising(threshold))

    async def _select_surprising(self, threshold: float | None) -> bool:
        bits = self.surprise_bits()
        if bits is None:
            task = self.compute_surprise()
            bits = await task if task is not None else None
            if bits is None:
                return False
        if threshold is None:
            start = float(np.percentile(bits, 98))
            threshold, ok = QInputDialog.getDouble(
                self, "Select surprising regions",
                f"Select the pixels on which the model spends more than this many bits per value\n"
                f"(this image: mean {bits.mean():.2f}, highest {bits.max():.2f}):", round(start, 2),
                0.0, 64.0, 2)
            if not ok:
                return False
        selected = bits > threshold
        if not selected.any():
            self.status.showMessage(f"No pixel is above {threshold:g} bits per value", 6000)
            return False
        self.session.set_mask(selected, "Select surprising regions")
        self.status.showMessage(f"Selected {int(selected.sum()):,} surprising pixels "
                                f"({selected.mean():.1%} of the image): Generate fills them", 8000)
        return True
