"""The editor session the widgets observe, and the undo commands that change its Document.

Strokes and other mask edits store only the changed bounding box, bit-packed (1/8 of a bool array);
canvas extensions store the old mask and blank area (packed; undo crops the canvas back); applied
results store only the changed box of the image. Uncrop (which rescales the image) keeps snapshots.
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
        self.undo = QUndoStack(self)
        self.undo.indexChanged.connect(self._index_changed)
        self.revision = 0  # bumps on every change (autosave compares it)

    def _index_changed(self, _index: int) -> None:
        self.revision += 1
        self.modified.emit()

    @property
    def empty(self) -> np.ndarray | None:
        """Canvas pixels with no content yet (shown as a checkerboard), or None."""
        blank = getattr(self.doc, "blank", None)
        return blank if blank is not None and blank.any() else None

    def set_document(self, doc, blank: np.ndarray | None = None) -> None:
        if blank is not None:
            doc.blank = np.array(blank, bool)  # a new canvas or a restored session: nothing there yet
        self.doc = doc
        self.undo.clear()
        self.changed.emit("all", None)
        self._index_changed(0)

    # ------------------------------------------------------------------ intents
    def stroke_done(self, after: np.ndarray, box: Box, text: str = "Brush stroke") -> None:
        """The canvas painted `box` of its layer (`after`: the new mask there); record it on the Document."""
        rows, cols = box.slices()
        before = self.doc.mask[rows, cols]
        if np.array_equal(before, after):
            return
        self.undo.push(MaskCommand(self, box, pack(before), pack(after), text))

    def set_mask(self, mask: np.ndarray, text: str) -> None:
        box = changed_box(self.doc.mask, mask)
        if box is None:
            return
        rows, cols = box.slices()
        self.undo.push(MaskCommand(self, box, pack(self.doc.mask[rows, cols]), pack(mask[rows, cols]), text))

    def extend(self, left: int, top: int, right: int, bottom: int) -> None:
        """Grows the canvas; the new area is masked and blank (to be generated)."""
        command = ExtendCommand(self, (int(left), int(top), int(right), int(bottom)))
        command.redo_now()  # Document validation (UserError) happens before anything is recorded
        self.undo.push(command)

    def uncrop(self, scale: float) -> None:
        before = self.doc.snapshot()
        self.doc.uncrop(scale)
        self.undo.push(SnapshotCommand(self, before, self.doc.snapshot(), f"Uncrop ×{scale:g}"))

    def apply_candidate(self, result, index: int) -> None:
        command = ApplyCommand(self, result, index)
        command.redo_now()  # Document.apply may refuse (UserError) before anything is recorded
        self.undo.push(command)


def _restore(doc, image: np.ndarray, mask: np.ndarray, origin, blank: np.ndarray) -> None:
    """Puts the canvas back through the Document's own snapshot type (restore copies the arrays)."""
    from fractal_studio.editing.document import DocumentState

    doc.restore(DocumentState(image=image, mask=mask, origin=tuple(origin), blank=blank))


class _Command(QUndoCommand):
    """A command whose first redo() already ran (redo_now) before the push.

    Subclasses define `again()` (redo after an undo) and `back()` (undo). They are not declared
    here as abstract methods: QUndoCommand's metaclass cannot be combined with abc's.
    """

    def __init__(self, editor: Editor, text: str):
        super().__init__(text)
        self.editor = editor
        self.done_once = False

    def redo(self) -> None:
        if self.done_once:
            self.again()
        self.done_once = True
        self.editor.changed.emit("all", None)

    def undo(self) -> None:
        self.back()
        self.editor.changed.emit("all", None)


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


class ExtendCommand(_Command):
    def __init__(self, editor: Editor, sides: tuple[int, int, int, int]):
        super().__init__(editor, "Extend canvas")
        self.sides = sides
        self.before = None  # packed mask, packed blank, origin, (width, height)

    def redo_now(self) -> None:
        doc = self.editor.doc
        before = (pack(doc.mask), pack(doc.blank), tuple(doc.origin), doc.size)
        doc.extend_canvas(*self.sides)
        self.before = before

    def again(self) -> None:
        self.editor.doc.extend_canvas(*self.sides)

    def back(self) -> None:
        doc = self.editor.doc
        mask, blank, origin, (w, h) = self.before
        left, top = self.sides[:2]
        _restore(doc, doc.image[top:top + h, left:left + w], unpack(mask), origin, unpack(blank))


class SnapshotCommand(_Command):
    def __init__(self, editor: Editor, before, after, text: str):
        super().__init__(editor, text)
        self.before, self.after = before, after
        self.done_once = True

    def again(self) -> None:
        self.editor.doc.restore(self.after)

    def back(self) -> None:
        self.editor.doc.restore(self.before)


class ApplyCommand(_Command):
    """Applies a candidate through Document.apply; keeps only the changed box of the image for undo."""

    def __init__(self, editor: Editor, result, index: int):
        super().__init__(editor, f"Apply candidate #{index + 1}")
        self.result, self.index = result, index
        self.saved = None  # box, pixels before, pixels after, and packed masks and blanks before/after

    def redo_now(self) -> None:
        doc = self.editor.doc
        before_image, before_mask, before_blank = doc.image, doc.mask, doc.blank
        doc.apply(self.result, self.index)
        box = changed_box(before_image, doc.image) or Box(0, 0, 0, 0)
        rows, cols = box.slices()
        self.saved = {"box": box, "origin": tuple(doc.origin),
                      "before": (before_image[rows, cols].copy(), pack(before_mask), pack(before_blank)),
                      "after": (doc.image[rows, cols].copy(), pack(doc.mask), pack(doc.blank))}
        self.result = None  # the history does not keep every candidate alive

    def _set(self, which: str) -> None:
        doc = self.editor.doc
        pixels, mask, blank = self.saved[which]
        image = doc.image.copy()
        rows, cols = self.saved["box"].slices()
        image[rows, cols] = pixels
        _restore(doc, image, unpack(mask), self.saved["origin"], unpack(blank))

    def again(self) -> None:
        self._set("after")

    def back(self) -> None:
        self._set("before")
