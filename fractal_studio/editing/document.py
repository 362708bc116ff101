"""The document being edited: the canvas pixels, the mask (True = generate), and the results so far.

No Qt here: the app wraps a Document in undo commands (snapshot/restore) and drives the engine.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import cv2
import numpy as np

from fractal_studio.editing.windows import Rect
from fractal_studio.errors import UserError

__all__ = ["Rect", "DocumentState", "Document"]


@dataclass(frozen=True)
class DocumentState:
    """An immutable snapshot for undo (the arrays are read-only copies)."""

    image: np.ndarray
    mask: np.ndarray
    origin: tuple[int, int]  # where the original image's (0, 0) lies in the canvas
    blank: np.ndarray | None = None  # canvas pixels with no original content (new outpainting area)
    coverage: np.ndarray | None = None  # uint8 soft-brush coverage (None: 255 wherever masked)
    # RGBA pins (editing/pins.py); None: the document's pins stay as they are (where they still fit)
    pins: np.ndarray | None = None


def _frozen(a: np.ndarray) -> np.ndarray:
    a = np.array(a, copy=True)
    a.flags.writeable = False
    return a


def check_image(image) -> np.ndarray:
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        desc = f"{image.dtype} array of shape {image.shape}" if isinstance(image, np.ndarray) else type(image)
        raise UserError(f"the image must be a uint8 RGB array [H, W, 3], got {desc}")
    if 0 in image.shape:
        raise UserError("the image is empty (zero width or height)")
    return image


class Document:
    def __init__(self, image: np.ndarray, mask: np.ndarray | None = None, path: str | None = None):
        self.image = np.array(check_image(image), copy=True)
        self.mask = np.zeros(self.image.shape[:2], bool)
        if mask is not None:
            self.set_mask(mask)
        self.path = None if path is None else os.fspath(path)
        self.origin: tuple[int, int] = (0, 0)
        self.class_id: int | None = None
        self.notes: tuple[str, ...] = ()  # what loading changed (alpha, orientation, ...), for the user
        self.blank = np.zeros(self.image.shape[:2], bool)  # pixels with no original content
        # The generation record of the last applied candidate (kept as text: holding the result
        # itself would keep its candidates and its copy of the image alive).
        self.applied: dict[str, str] | None = None
        # How much of a generated pixel to keep (255 = all) as a soft brush painted it. Only read
        # where the mask is True (see `coverage`), so mask edits need not touch it.
        self._coverage = np.zeros(self.image.shape[:2], np.uint8)
        # Pixels inside the mask to keep exactly (RGBA, opaque = pinned; editing/pins.py), or None.
        self.pins: np.ndarray | None = None

    # --------------------------------------------------------------------------------- files
    @classmethod
    def open(cls, path) -> Document:
        """Loads an image file; its transparent pixels become the mask (to be generated)."""
        from fractal_studio.editing.imageio import load_image

        loaded = load_image(path)
        doc = cls(loaded.pixels, loaded.transparent, path=os.fspath(path))
        doc.notes = tuple(loaded.notes)
        if loaded.transparent is not None:
            doc.blank = loaded.transparent.copy()
        return doc

    # ------------------------------------------------------------------------------ geometry
    @property
    def size(self) -> tuple[int, int]:
        """(width, height) of the canvas."""
        return int(self.image.shape[1]), int(self.image.shape[0])

    @property
    def rect(self) -> Rect:
        return Rect(0, 0, *self.size)

    # ---------------------------------------------------------------------------------- pins
    def set_pins(self, pins: np.ndarray | None) -> None:
        """Replaces the pins (RGBA uint8 of the canvas's size; None: no pins)."""
        from fractal_studio.editing.pins import check_pins

        self.pins = None if pins is None else np.array(check_pins(pins, self.mask.shape), copy=True)

    # ---------------------------------------------------------------------------------- mask
    def set_mask(self, mask: np.ndarray) -> None:
        if not isinstance(mask, np.ndarray):
            raise UserError(f"the mask must be a numpy bool array, got {type(mask).__name__}")
        if mask.shape != self.image.shape[:2]:
            raise UserError(f"the mask is {_size_text(mask.shape)} but the image is "
                            f"{self.size[0]}×{self.size[1]}; the mask must have the image's size")
        if mask.dtype != bool:
            raise UserError(f"the mask must be boolean (True = generate), got {mask.dtype}")
        self.mask = np.array(mask, dtype=bool, copy=True)

    @property
    def coverage(self) -> np.ndarray:
        """uint8 [H, W]: 0 outside the mask; inside it the brush's coverage, 255 where none is known
        (the mask is always `coverage > 0`)."""
        return self.coverage_in(self.rect)

    def coverage_in(self, rect: Rect) -> np.ndarray:
        """`coverage` inside `rect` only (a brush stroke on a big photo reads just its box)."""
        if self._coverage.shape != self.mask.shape:  # the mask was replaced by a direct assignment
            self._coverage = np.zeros(self.mask.shape, np.uint8)
        mask = self.mask[rect.slices]
        coverage = self._coverage[rect.slices].copy()
        coverage[~mask] = 0
        coverage[mask & (coverage == 0)] = 255
        return coverage

    def set_coverage(self, coverage: np.ndarray, rect: Rect | None = None) -> None:
        """Sets the mask from 8-bit coverage (mask = coverage > 0), everywhere or inside `rect`."""
        if self._coverage.shape != self.mask.shape:
            self._coverage = np.zeros(self.mask.shape, np.uint8)
        rows, cols = (rect or self.rect).slices
        if coverage.dtype != np.uint8 or coverage.shape != self.mask[rows, cols].shape:
            raise UserError(f"the coverage must be uint8 of the {'box' if rect else 'image'}'s size, got "
                            f"{coverage.dtype} {coverage.shape}")
        self._coverage[rows, cols] = coverage
        self.mask[rows, cols] = coverage > 0

    def blend_weights(self) -> np.ndarray | None:
        """The coverage when a soft brush left partial values inside the mask, else None (all 255)."""
        coverage = self.coverage
        return coverage if (coverage[self.mask] < 255).any() else None

    def clear_mask(self) -> None:
        self.mask = np.zeros(self.image.shape[:2], bool)

    def invert_mask(self) -> None:
        self.mask = ~self.mask

    # ------------------------------------------------------------------------ canvas changes
    def extend_canvas(self, left: int, top: int, right: int, bottom: int) -> None:
        """Grows the canvas by the given pixels on each side; the new area is 0 and masked (generate)."""
        amounts = (left, top, right, bottom)
        for value in amounts:
            if not isinstance(value, int | np.integer) or value < 0:
                raise UserError(f"canvas extensions must be whole numbers >= 0, got {amounts}")
        left, top, right, bottom = (int(v) for v in amounts)
        width, height = self.size
        new_w, new_h = width + left + right, height + top + bottom
        image = np.zeros((new_h, new_w, 3), np.uint8)
        mask = np.ones((new_h, new_w), bool)
        blank = np.ones((new_h, new_w), bool)
        inner = (slice(top, top + height), slice(left, left + width))
        image[inner] = self.image
        mask[inner] = self.mask
        blank[inner] = self.blank
        coverage = np.zeros((new_h, new_w), np.uint8)  # the new area: 0 here reads as 255 (masked)
        coverage[inner] = self.coverage
        self.image, self.mask, self.blank, self._coverage = image, mask, blank, coverage
        if self.pins is not None:
            pins = np.zeros((new_h, new_w, 4), np.uint8)
            pins[inner] = self.pins
            self.pins = pins
        self.origin = (self.origin[0] + left, self.origin[1] + top)

    def uncrop(self, scale: float) -> None:
        """Shrinks the image by `scale` (> 1) into the middle of a canvas of the same size; the border
        around it is masked (generate). The shrunk image keeps its own mask (area-shrunk: a pixel is
        masked if any of its source pixels was)."""
        try:
            scale = float(scale)
        except (TypeError, ValueError):
            raise UserError(f"the uncrop scale must be a number > 1, got {scale!r}") from None
        if not np.isfinite(scale) or scale <= 1.0:
            raise UserError(f"the uncrop scale must be greater than 1 (e.g. 1.5 or 2), got {scale:g}")
        width, height = self.size
        small_w, small_h = max(1, round(width / scale)), max(1, round(height / scale))
        from fractal_studio.editing.windows import working_unknown

        small = cv2.resize(self.image, (small_w, small_h), interpolation=cv2.INTER_AREA)
        small_mask = working_unknown(self.mask, (small_w, small_h))
        small_blank = working_unknown(self.blank, (small_w, small_h))
        left, top = (width - small_w) // 2, (height - small_h) // 2
        image = np.zeros_like(self.image)
        mask = np.ones_like(self.mask)
        blank = np.ones_like(self.blank)
        inner = (slice(top, top + small_h), slice(left, left + small_w))
        image[inner], mask[inner], blank[inner] = small, small_mask, small_blank
        self.image, self.mask, self.blank = image, mask, blank
        self.pins = None  # a pin is one exact pixel: shrunk, it would be none
        self.origin = (left + round(self.origin[0] / scale), top + round(self.origin[1] / scale))

    # ---------------------------------------------------------------------------------- undo
    def snapshot(self) -> DocumentState:
        pins = self.pins if self.pins is not None else np.zeros((*self.mask.shape, 4), np.uint8)
        return DocumentState(image=_frozen(self.image), mask=_frozen(self.mask), origin=tuple(self.origin),
                             blank=_frozen(self.blank), coverage=_frozen(self.coverage), pins=_frozen(pins))

    def restore(self, state: DocumentState, copy: bool = True) -> None:
        """Puts a snapshot back. copy=False takes the state's arrays as they are (for states built
        from fresh arrays that nothing else holds: an undo step of a big photo then costs no copy)."""
        if state.mask.shape != state.image.shape[:2]:
            raise ValueError("inconsistent snapshot: mask and image sizes differ")
        self.image = np.array(state.image, copy=copy)
        self.mask = np.array(state.mask, dtype=bool, copy=copy)
        self.origin = (int(state.origin[0]), int(state.origin[1]))
        if state.blank is not None and state.blank.shape == self.mask.shape:
            self.blank = np.array(state.blank, copy=copy)
        else:
            self.blank = np.zeros_like(self.mask)
        if state.coverage is not None and state.coverage.shape == self.mask.shape:
            self._coverage = np.array(state.coverage, dtype=np.uint8, copy=copy)
        else:
            self._coverage = np.zeros(self.mask.shape, np.uint8)
        if state.pins is not None and state.pins.shape[:2] == self.mask.shape:
            self.pins = np.array(state.pins, copy=True)
        elif self.pins is not None and self.pins.shape[:2] != self.mask.shape:
            self.pins = None

    # ------------------------------------------------------------------------------- results
    def apply(self, result, candidate: int) -> None:
        """Replaces the image with candidate `candidate` of `result`; clears the mask."""
        if not 0 <= int(candidate) < len(result.candidates):
            raise UserError(f"there is no candidate {candidate}: the result has {len(result.candidates)}")
        pixels = result.candidates[int(candidate)]
        if pixels.shape != self.image.shape:
            raise UserError(f"the result is {_size_text(pixels.shape)} but the canvas is "
                            f"{self.size[0]}×{self.size[1]}; it belongs to another canvas size")
        from fractal_studio.editing.candidates import CandidateImages

        # CandidateImages compose a fresh array on access: no second copy of a 72 MB photo.
        fresh = isinstance(result.candidates, CandidateImages)
        self.image = pixels if fresh else np.array(pixels, dtype=np.uint8, copy=True)
        self.applied = {**{str(k): str(v) for k, v in result.metadata.items()},
                        "candidate": f"{int(candidate) + 1}/{len(result.candidates)}"}
        self.blank = self.blank & ~self.mask
        self.clear_mask()

    def export(self, path, metadata: dict[str, str] | None = None, overwrite_source: bool = False) -> None:
        """Saves the canvas as PNG (atomic) with the generation record of the last applied result (or
        `metadata`) in its text chunks; never writes over the opened file unless overwrite_source."""
        from fractal_studio.editing.imageio import save_png

        if metadata is None:
            metadata = dict(self.applied or {})
        save_png(path, self.image, metadata, source=self.path, overwrite_source=overwrite_source)


def _size_text(shape) -> str:
    if len(shape) >= 2:
        return f"{shape[1]}×{shape[0]}"
    return f"shape {tuple(shape)}"
