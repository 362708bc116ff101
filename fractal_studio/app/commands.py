"""The editor session the widgets observe, and the undo commands that change its Document.

Strokes and other mask edits store only the changed bounding box, bit-packed (1/8 of a bool array);
canvas resizes and applied results store Document snapshots. `empty` marks canvas pixels that were
never painted (new outpainting area): the canvas shows a checkerboard there.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QUndoCommand, QUndoStack

from fractal_studio.app.mask_tools import Box, changed_box, pack, unpack


class Editor(QObject):
    """Holds the Document (the state) and tells the widgets what changed."""

    changed = Signal(str, object)  # kind ("all", "mask"), Box or None
    modified = Signal()

    def __init__(self, parent=None):
        super().__init__(parent)
        self.doc = None
        self.empty: np.ndarray | None = None
        self.undo = QUndoStack(self)
        self.undo.indexChanged.connect(lambda _: self.modified.emit())
        self.revision = 0  # bumps on every change (autosave compares it)
        self.modified.connect(self._bump)

    def _bump(self) -> None:
        self.revision += 1

    def set_document(self, doc, empty: np.ndarray | None = None) -> None:
        self.doc = doc
        self.empty = empty if empty is not None and empty.any() else None
        self.undo.clear()
        self.changed.emit("all", None)
        self.modified.emit()

    # ------------------------------------------------------------------ intents
    def stroke_done(self, layer_mask: np.ndarray, box: Box, text: str = "Brush stroke") -> None:
        """The canvas painted `box` of its layer; record it against the Document's mask."""
        rows, cols = box.slices()
        before = self.doc.mask[rows, cols]
        after = layer_mask[rows, cols]
        if np.array_equal(before, after):
            return
        self.undo.push(MaskCommand(self, box, pack(before), pack(after), text))

    def set_mask(self, mask: np.ndarray, text: str) -> None:
        box = changed_box(self.doc.mask, mask)
        if box is None:
            return
        rows, cols = box.slices()
        self.undo.push(MaskCommand(self, box, pack(self.doc.mask[rows, cols]), pack(mask[rows, cols]), text))

    def perform(self, text: str, operation) -> None:
        """Runs `operation(doc)` and records before/after snapshots (canvas resizes, applied results)."""
        before = (self.doc.snapshot(), self.empty)
        operation(self.doc)
        self.undo.push(StateCommand(self, before, (self.doc.snapshot(), self.empty), text))

    def extend(self, left: int, top: int, right: int, bottom: int, uncrop: float | None = None) -> None:
        old_w, old_h = self.doc.size
        old_origin = tuple(self.doc.origin) if self.doc.origin is not None else (0, 0)
        old_empty = self.empty

        def operation(doc):
            if uncrop is not None:
                doc.uncrop(uncrop)
            else:
                doc.extend_canvas(left, top, right, bottom)
            w, h = doc.size
            dx, dy = _offset(old_origin, doc.origin, (left, top) if uncrop is None else None,
                             (old_w, old_h), (w, h))
            empty = np.ones((h, w), bool)
            empty[dy:dy + old_h, dx:dx + old_w] = False if old_empty is None else old_empty
            self.empty = empty

        self.perform("Extend canvas" if uncrop is None else f"Uncrop ×{uncrop:g}", operation)

    def apply_candidate(self, result, index: int) -> None:
        generated = self.doc.mask.copy()

        def operation(doc):
            doc.apply(result, index)
            if self.empty is not None:
                empty = self.empty & ~generated
                self.empty = empty if empty.any() else None

        self.perform("Apply result", operation)


def _offset(old_origin, new_origin, requested, old_size, new_size) -> tuple[int, int]:
    """Where the old canvas lies in the new one."""
    if requested is not None:
        return requested
    if new_origin is not None:
        dx, dy = int(new_origin[0]) - int(old_origin[0]), int(new_origin[1]) - int(old_origin[1])
        if 0 <= dx <= new_size[0] - old_size[0] and 0 <= dy <= new_size[1] - old_size[1]:
            return dx, dy
    return (new_size[0] - old_size[0]) // 2, (new_size[1] - old_size[1]) // 2


class MaskCommand(QUndoCommand):
    def __init__(self, editor: Editor, box: Box, before, after, text: str):
        super().__init__(text)
        self.editor, self.box, self.before, self.after = editor, box, before, after

    def _set(self, packed) -> None:
        mask = self.editor.doc.mask.copy()
        rows, cols = self.box.slices()
        mask[rows, cols] = unpack(packed)
        self.editor.doc.set_mask(mask)
        self.editor.changed.emit("mask", self.box)

    def redo(self) -> None:
        self._set(self.after)

    def undo(self) -> None:
        self._set(self.before)


class StateCommand(QUndoCommand):
    """The operation already ran when pushed; the first redo() only announces it."""

    def __init__(self, editor: Editor, before, after, text: str):
        super().__init__(text)
        self.editor, self.before, self.after = editor, before, after
        self.first = True

    def _set(self, state) -> None:
        snapshot, empty = state
        self.editor.doc.restore(snapshot)
        self.editor.empty = empty
        self.editor.changed.emit("all", None)

    def redo(self) -> None:
        if self.first:
            self.first = False
            self.editor.changed.emit("all", None)
            return
        self._set(self.after)

    def undo(self) -> None:
        self._set(self.before)
