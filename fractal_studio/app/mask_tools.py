"""The mask as the canvas paints it: a uint8 coverage buffer and a translucent overlay image.

Strokes are painted segment by segment into the bounding box they touch, and only that box of the
overlay is recomputed, so a 4000×3000 canvas stays smooth. The Document's bool mask (True = generate)
is the truth: coverage > 0 when a stroke ends (partial coverage is the blend weight of the
generated pixels); `load` re-reads the Document after any other change.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from PySide6.QtGui import QImage

OVERLAY_RGB = (255, 64, 96)
OVERLAY_ALPHA = 0.45


@dataclass(frozen=True)
class Box:
    left: int
    top: int
    right: int  # exclusive
    bottom: int

    @property
    def empty(self) -> bool:
        return self.right <= self.left or self.bottom <= self.top

    def union(self, other: Box | None) -> Box:
        if other is None or other.empty:
            return self
        if self.empty:
            return other
        return Box(min(self.left, other.left), min(self.top, other.top),
                   max(self.right, other.right), max(self.bottom, other.bottom))

    def slices(self) -> tuple[slice, slice]:
        return slice(self.top, self.bottom), slice(self.left, self.right)


def changed_box(a: np.ndarray, b: np.ndarray) -> Box | None:
    """Bounding box where two equal-shaped arrays differ, or None."""
    diff = a != b
    if diff.ndim == 3:
        diff = diff.any(axis=2)
    rows = np.flatnonzero(diff.any(axis=1))
    if rows.size == 0:
        return None
    cols = np.flatnonzero(diff.any(axis=0))
    return Box(int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1)


class MaskLayer:
    """Coverage (uint8, 255 = generate) plus an ARGB32 premultiplied overlay sharing memory with numpy."""

    def __init__(self):
        self.coverage = np.zeros((1, 1), np.uint8)
        self.argb = np.zeros((1, 1, 4), np.uint8)
        self.image = QImage()
        self.visible = True

    @property
    def size(self) -> tuple[int, int]:
        return self.coverage.shape[1], self.coverage.shape[0]

    def load(self, mask: np.ndarray) -> None:
        h, w = mask.shape
        if self.coverage.shape != (h, w):
            self.coverage = np.zeros((h, w), np.uint8)
            self.argb = np.zeros((h, w, 4), np.uint8)
            self.image = QImage(self.argb.data, w, h, w * 4, QImage.Format.Format_ARGB32_Premultiplied)
        self.coverage[...] = np.where(mask, 255, 0)  # a new document or canvas: no soft edges yet
        self.refresh(Box(0, 0, w, h))

    def load_box(self, mask: np.ndarray, box: Box) -> None:
        """Re-reads one box of the Document mask (undo/redo of a stroke)."""
        rows, cols = box.slices()
        self.coverage[rows, cols] = _coverage_for(mask[rows, cols], self.coverage[rows, cols])
        self.refresh(box)

    def refresh(self, box: Box) -> None:
        rows, cols = box.slices()
        alpha = self.coverage[rows, cols].astype(np.uint16) * int(OVERLAY_ALPHA * 256) >> 8
        out = self.argb[rows, cols]
        # little-endian ARGB32 is B, G, R, A in memory; premultiplied by alpha.
        out[..., 3] = alpha
        for channel, value in zip((2, 1, 0), OVERLAY_RGB, strict=True):
            out[..., channel] = (alpha * value + 127) // 255

    def as_mask(self) -> np.ndarray:
        return self.coverage > 0

    # ------------------------------------------------------------------ painting
    def paint_segment(self, p0: tuple[float, float], p1: tuple[float, float], size: float,
                      hardness: float, erase: bool) -> Box | None:
        """Paints a round-brush segment from p0 to p1 (image coordinates); returns the touched box."""
        h, w = self.coverage.shape
        r = max(size / 2.0, 0.5)
        box = Box(max(int(np.floor(min(p0[0], p1[0]) - r)), 0), max(int(np.floor(min(p0[1], p1[1]) - r)), 0),
                  min(int(np.ceil(max(p0[0], p1[0]) + r)) + 1, w),
                  min(int(np.ceil(max(p0[1], p1[1]) + r)) + 1, h))
        if box.empty:
            return None
        ys, xs = np.mgrid[box.top:box.bottom, box.left:box.right].astype(np.float32)
        xs += 0.5
        ys += 0.5
        dist = _segment_distance(xs, ys, p0, p1)
        soft = max(r * (1.0 - hardness), 0.75)
        inner = r - soft
        cov = np.clip((r - dist) / (r - inner) if r > inner else (dist <= r), 0.0, 1.0)
        cov = (cov * 255.0 + 0.5).astype(np.uint8)
        rows, cols = box.slices()
        target = self.coverage[rows, cols]
        if erase:
            np.minimum(target, 255 - cov, out=target)
        else:
            np.maximum(target, cov, out=target)
        self.refresh(box)
        return box

    def fill_rect(self, box: Box, erase: bool = False) -> Box | None:
        h, w = self.coverage.shape
        box = Box(max(box.left, 0), max(box.top, 0), min(box.right, w), min(box.bottom, h))
        if box.empty:
            return None
        rows, cols = box.slices()
        self.coverage[rows, cols] = 0 if erase else 255
        self.refresh(box)
        return box


def _coverage_for(mask: np.ndarray, coverage: np.ndarray) -> np.ndarray:
    """Coverage that agrees with the Document's mask: soft values painted by a brush are kept where
    the pixel is still masked (they are the blend weights), new mask pixels are full, others 0."""
    return np.where(mask, np.where(coverage > 0, coverage, 255), 0).astype(np.uint8)


def _segment_distance(xs, ys, p0, p1) -> np.ndarray:
    x0, y0 = p0
    dx, dy = p1[0] - x0, p1[1] - y0
    length2 = dx * dx + dy * dy
    if length2 < 1e-9:
        return np.hypot(xs - x0, ys - y0)
    t = np.clip(((xs - x0) * dx + (ys - y0) * dy) / length2, 0.0, 1.0)
    return np.hypot(xs - (x0 + t * dx), ys - (y0 + t * dy))


# ---------------------------------------------------------------------------------- whole-mask edits
def grow(mask: np.ndarray, pixels: int) -> np.ndarray:
    """Dilates (pixels > 0) or erodes (pixels < 0) a bool mask with a round kernel."""
    if pixels == 0:
        return mask.copy()
    k = 2 * abs(pixels) + 1
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k))
    src = mask.astype(np.uint8)
    out = cv2.dilate(src, kernel) if pixels > 0 else cv2.erode(src, kernel, borderValue=1)
    return out.astype(bool)


def pack(mask: np.ndarray) -> tuple[bytes, tuple[int, ...]]:
    """A bool array in 1/8 of its size (undo history)."""
    return np.packbits(mask, axis=None).tobytes(), mask.shape


def unpack(packed: tuple[bytes, tuple[int, ...]]) -> np.ndarray:
    data, shape = packed
    count = int(np.prod(shape))
    return np.unpackbits(np.frombuffer(data, np.uint8), count=count).astype(bool).reshape(shape)
