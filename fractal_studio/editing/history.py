"""Undo steps of an editing session: each keeps only what it changed, compactly.

Mask edits keep the changed box of the coverage (bit-packed when it is all 0/255, as hard masks are);
canvas extensions keep the old mask, coverage and blank area (undo crops the canvas back); applied
results keep the changed box of the image. Uncrop, which rescales the image, keeps snapshots.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fractal_studio.editing.document import Document, DocumentState
from fractal_studio.editing.windows import Rect, bounding_rect


def changed_rect(a: np.ndarray, b: np.ndarray) -> Rect | None:
    """Bounding rectangle of the pixels where two equal-shaped arrays differ, or None."""
    diff = a != b
    return bounding_rect(diff.any(axis=2) if diff.ndim == 3 else diff)


def pack(values: np.ndarray) -> tuple:
    """A bool or 0/255 array in 1/8 of its size; any other uint8 array as it is."""
    if values.dtype == bool:
        return "bits", np.packbits(values, axis=None).tobytes(), values.shape
    if ((values == 0) | (values == 255)).all():
        return "levels", np.packbits(values > 0, axis=None).tobytes(), values.shape
    return "raw", values.copy(), values.shape


def unpack(packed: tuple) -> np.ndarray:
    kind, data, shape = packed
    if kind == "raw":
        return data.copy()
    bits = np.unpackbits(np.frombuffer(data, np.uint8), count=int(np.prod(shape))).reshape(shape)
    return bits.astype(bool) if kind == "bits" else (bits * np.uint8(255))


class Step:
    """One undoable change, named by its `text`. A MaskStep's `rect` says which part changed."""

    text: str

    def undo(self, doc: Document) -> None:
        raise NotImplementedError

    def redo(self, doc: Document) -> None:
        raise NotImplementedError


@dataclass
class MaskStep(Step):
    rect: Rect
    before: tuple
    after: tuple
    text: str = "Mask"

    @classmethod
    def between(cls, doc: Document, coverage: np.ndarray, text: str) -> MaskStep | None:
        """The step from the document's coverage to `coverage` (whole image), or None if equal."""
        current = doc.coverage
        rect = changed_rect(current, coverage)
        if rect is None:
            return None
        return cls(rect, pack(current[rect.slices]), pack(coverage[rect.slices]), text)

    def undo(self, doc: Document) -> None:
        doc.set_coverage(unpack(self.before), self.rect)

    def redo(self, doc: Document) -> None:
        doc.set_coverage(unpack(self.after), self.rect)


@dataclass
class ExtendStep(Step):
    sides: tuple[int, int, int, int]
    before: tuple  # packed coverage, packed blank, origin, (width, height)
    text: str = "Extend canvas"

    @classmethod
    def run(cls, doc: Document, sides: tuple[int, int, int, int]) -> ExtendStep:
        before = (pack(doc.coverage), pack(doc.blank), tuple(doc.origin), doc.size)
        doc.extend_canvas(*sides)  # validates (UserError) before anything is recorded
        return cls(sides, before)

    def undo(self, doc: Document) -> None:
        coverage, blank, origin, (w, h) = self.before
        left, top = self.sides[:2]
        image = doc.image[top:top + h, left:left + w]
        cover = unpack(coverage)
        doc.restore(DocumentState(image=image.copy(), mask=cover > 0, origin=origin, blank=unpack(blank),
                                  coverage=cover), copy=False)

    def redo(self, doc: Document) -> None:
        doc.extend_canvas(*self.sides)


@dataclass
class SnapshotStep(Step):
    before: DocumentState
    after: DocumentState
    text: str

    def undo(self, doc: Document) -> None:
        doc.restore(self.before)

    def redo(self, doc: Document) -> None:
        doc.restore(self.after)


@dataclass
class ApplyStep(Step):
    """A candidate applied through Document.apply; keeps only the changed box of the image."""

    rect: Rect
    origin: tuple[int, int]
    before: tuple  # image crop, packed coverage, packed blank
    after: tuple
    text: str

    @classmethod
    def run(cls, doc: Document, result, index: int) -> ApplyStep:
        image, coverage, blank = doc.image, doc.coverage, doc.blank
        doc.apply(result, index)  # may refuse (UserError) before anything is recorded
        # Candidates differ from the image only inside their box (when they say which).
        box = getattr(result.candidates, "box", None)
        rect = changed_rect(image[box.slices], doc.image[box.slices]) if box is not None else \
            changed_rect(image, doc.image)
        rect = Rect(0, 0, 0, 0) if rect is None else rect.shifted(box.left, box.top) if box else rect
        return cls(rect, tuple(doc.origin),
                   (image[rect.slices].copy(), pack(coverage), pack(blank)),
                   (doc.image[rect.slices].copy(), pack(doc.coverage), pack(doc.blank)),
                   f"Apply candidate #{index + 1}")

    def _set(self, doc: Document, saved: tuple) -> None:
        pixels, coverage, blank = saved
        image = doc.image.copy()
        image[self.rect.slices] = pixels
        cover = unpack(coverage)
        doc.restore(DocumentState(image=image, mask=cover > 0, origin=self.origin, blank=unpack(blank),
                                  coverage=cover), copy=False)

    def undo(self, doc: Document) -> None:
        self._set(doc, self.before)

    def redo(self, doc: Document) -> None:
        self._set(doc, self.after)


class History:
    """Undo and redo stacks of Steps."""

    def __init__(self, limit: int = 200):
        self.done: list[Step] = []
        self.undone: list[Step] = []
        self.limit = limit

    def push(self, step: Step) -> None:
        self.done.append(step)
        del self.done[:-self.limit]
        self.undone.clear()

    def clear(self) -> None:
        self.done.clear()
        self.undone.clear()

    @property
    def last(self) -> Step | None:
        """The step the document is at (None: as it was opened)."""
        return self.done[-1] if self.done else None

    def steps_to(self, mark: Step | None) -> list[Step] | None:
        """The steps between the document's state and the state right after `mark` (None: as
        opened), by undo or redo; None when that state is gone (history trimmed or replaced)."""
        at = next((i for i, step in enumerate(self.done) if step is mark), None)
        if mark is None or at is not None:
            return self.done[(-1 if at is None else at) + 1:]
        at = next((i for i, step in enumerate(self.undone) if step is mark), None)
        return None if at is None else self.undone[at:]

    @property
    def undo_text(self) -> str | None:
        return self.done[-1].text if self.done else None

    @property
    def redo_text(self) -> str | None:
        return self.undone[-1].text if self.undone else None

    def undo(self, doc: Document) -> Step | None:
        return self._move(self.done, self.undone, lambda step: step.undo(doc))

    def redo(self, doc: Document) -> Step | None:
        return self._move(self.undone, self.done, lambda step: step.redo(doc))

    @staticmethod
    def _move(source: list[Step], target: list[Step], action) -> Step | None:
        if not source:
            return None
        step = source.pop()
        action(step)
        target.append(step)
        return step
