"""Undo steps of an editing session: each keeps only what it changed, compactly.

Mask edits keep the changed box of the coverage (bit-packed when it is all 0/255, as hard masks are);
canvas extensions keep the old mask, coverage and blank area (undo crops the canvas back); applied
results keep the changed box of the image. Uncrop, which rescales the image, keeps snapshots.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

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


class Step(Protocol):
    """What every undoable change has: its name, and how to take it back and do it again. (A
    MaskStep's `rect` also says which part changed.)"""

    text: str

    def undo(self, doc: Document) -> None: ...

    def redo(self, doc: Document) -> None: ...


@dataclass
class MaskStep:
    rect: Rect
    before: tuple
    after: tuple
    text: str = "Mask"

    @classmethod
    def between(cls, doc: Document, coverage: np.ndarray, text: str,
                area: Rect | None = None) -> MaskStep | None:
        """The step from the document's coverage to `coverage` (of `area`, default the whole
        image), or None if they are equal."""
        area = area or doc.rect
        current = doc.coverage_in(area)
        rect = changed_rect(current, coverage)
        if rect is None:
            return None
        before, after = pack(current[rect.slices]), pack(coverage[rect.slices])
        return cls(rect.shifted(area.left, area.top), before, after, text)

    def undo(self, doc: Document) -> None:
        doc.set_coverage(unpack(self.before), self.rect)

    def redo(self, doc: Document) -> None:
        doc.set_coverage(unpack(self.after), self.rect)


@dataclass
class ExtendStep:
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
        pins = None if doc.pins is None else doc.pins[top:top + h, left:left + w].copy()
        doc.restore(DocumentState(image=image.copy(), mask=cover > 0, origin=origin, blank=unpack(blank),
                                  coverage=cover, pins=pins), copy=False)

    def redo(self, doc: Document) -> None:
        doc.extend_canvas(*self.sides)


@dataclass
class PinStep:
    """Pins placed or removed (editing/pins.py): the changed box of the RGBA pins, before and after."""

    rect: Rect
    before: np.ndarray
    after: np.ndarray
    text: str = "Pin"

    @classmethod
    def between(cls, doc: Document, pins: np.ndarray, rect: Rect, text: str) -> PinStep | None:
        """The step from the document's pins inside `rect` to `pins` (of `rect`'s size); None when
        nothing changes."""
        current = doc.pins[rect.slices] if doc.pins is not None else np.zeros_like(pins)
        if np.array_equal(current, pins):
            return None
        return cls(rect, current.copy(), pins.copy(), text)

    def _set(self, doc: Document, pins: np.ndarray) -> None:
        if doc.pins is None:
            doc.pins = np.zeros((*doc.mask.shape, 4), np.uint8)
        doc.pins[self.rect.slices] = pins

    def undo(self, doc: Document) -> None:
        self._set(doc, self.before)

    def redo(self, doc: Document) -> None:
        self._set(doc, self.after)


@dataclass
class SnapshotStep:
    before: DocumentState
    after: DocumentState
    text: str

    def undo(self, doc: Document) -> None:
        doc.restore(self.before)

    def redo(self, doc: Document) -> None:
        doc.restore(self.after)


@dataclass
class ApplyStep:
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


# ------------------------------------------------------------------------ kept across a restart
SAVED_STEPS = 20  # the last steps an autosave keeps, so a restored session can still undo them


def history_to_arrays(history: History) -> tuple[dict[str, np.ndarray], list[dict]]:
    """The last done steps as arrays and JSON-able records (for an autosave). The record stops at
    an uncrop (its snapshots are whole images; undo can go back to there)."""
    kept: list[Step] = []
    for step in reversed(history.done[-SAVED_STEPS:]):
        if isinstance(step, SnapshotStep):
            break
        kept.append(step)
    arrays: dict[str, np.ndarray] = {}
    records = []
    for index, step in enumerate(reversed(kept)):
        name = f"history_{index}"
        if isinstance(step, MaskStep):
            record = {"kind": "mask", "rect": _rect(step.rect), "text": step.text,
                      "before": _save_packed(arrays, f"{name}_before", step.before),
                      "after": _save_packed(arrays, f"{name}_after", step.after)}
        elif isinstance(step, ExtendStep):
            coverage, blank, origin, size = step.before
            record = {"kind": "extend", "sides": list(step.sides), "text": step.text,
                      "coverage": _save_packed(arrays, f"{name}_coverage", coverage),
                      "blank": _save_packed(arrays, f"{name}_blank", blank),
                      "origin": list(origin), "size": list(size)}
        elif isinstance(step, PinStep):
            arrays[f"{name}_before"], arrays[f"{name}_after"] = step.before, step.after
            record = {"kind": "pins", "rect": _rect(step.rect), "text": step.text}
        else:  # ApplyStep
            record = {"kind": "apply", "rect": _rect(step.rect), "origin": list(step.origin),
                      "text": step.text}
            for side, (pixels, coverage, blank) in (("before", step.before), ("after", step.after)):
                arrays[f"{name}_{side}_pixels"] = pixels
                record[side] = {"coverage": _save_packed(arrays, f"{name}_{side}_coverage", coverage),
                                "blank": _save_packed(arrays, f"{name}_{side}_blank", blank)}
        records.append(record)
    return arrays, records


def history_from_arrays(arrays: dict[str, np.ndarray], records: list) -> History:
    """The History an autosave kept; ValueError (one line) when any part does not fit."""
    history = History()
    if not isinstance(records, list):
        raise ValueError("the saved undo history is not a list")
    try:
        for index, record in enumerate(records):
            name = f"history_{index}"
            kind = record["kind"]
            if kind == "mask":
                step = MaskStep(Rect(*record["rect"]),
                                _load_packed(arrays, f"{name}_before", record["before"]),
                                _load_packed(arrays, f"{name}_after", record["after"]), str(record["text"]))
            elif kind == "extend":
                before = (_load_packed(arrays, f"{name}_coverage", record["coverage"]),
                          _load_packed(arrays, f"{name}_blank", record["blank"]),
                          tuple(int(v) for v in record["origin"]), tuple(int(v) for v in record["size"]))
                step = ExtendStep(tuple(int(v) for v in record["sides"]), before, str(record["text"]))
            elif kind == "apply":
                sides = {side: (np.asarray(arrays[f"{name}_{side}_pixels"], np.uint8),
                                _load_packed(arrays, f"{name}_{side}_coverage", record[side]["coverage"]),
                                _load_packed(arrays, f"{name}_{side}_blank", record[side]["blank"]))
                         for side in ("before", "after")}
                origin = tuple(int(v) for v in record["origin"])
                step = ApplyStep(Rect(*record["rect"]), origin, sides["before"], sides["after"],
                                 str(record["text"]))
            elif kind == "pins":
                rect = Rect(*record["rect"])
                before, after = (_pins_crop(arrays, f"{name}_{side}", rect) for side in ("before", "after"))
                step = PinStep(rect, before, after, str(record["text"]))
            else:
                raise ValueError(f"unknown step {kind!r}")
            history.done.append(step)
    except (KeyError, TypeError, ValueError, IndexError) as error:
        raise ValueError(f"the saved undo history cannot be read ({error})") from None
    return history


def _pins_crop(arrays: dict[str, np.ndarray], name: str, rect: Rect) -> np.ndarray:
    data = np.asarray(arrays[name])
    if data.dtype != np.uint8 or data.shape != (rect.height, rect.width, 4):
        raise ValueError(f"{name} is not the RGBA pins of its box")
    return data.copy()


def _rect(rect: Rect) -> list[int]:
    return [rect.left, rect.top, rect.width, rect.height]


def _save_packed(arrays: dict[str, np.ndarray], name: str, packed: tuple) -> dict:
    kind, data, shape = packed
    arrays[name] = data if kind == "raw" else np.frombuffer(data, np.uint8)
    return {"kind": kind, "shape": [int(v) for v in shape]}


def _load_packed(arrays: dict[str, np.ndarray], name: str, record: dict) -> tuple:
    kind, shape = record["kind"], tuple(int(v) for v in record["shape"])
    data = np.asarray(arrays[name])
    if data.dtype != np.uint8:
        raise ValueError(f"{name} is not 8-bit")
    if kind == "raw":
        if data.shape != shape:
            raise ValueError(f"{name} has the wrong shape")
        return kind, data.copy(), shape
    if kind not in ("bits", "levels") or data.size * 8 < int(np.prod(shape)):
        raise ValueError(f"{name} is too short for its shape")
    return kind, data.tobytes(), shape
