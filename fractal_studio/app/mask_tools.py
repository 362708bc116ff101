"""The mask as the canvas paints it: a uint8 coverage buffer and a translucent overlay image.

Strokes are painted segment by segment into the bounding box they touch, and only that box of the
overlay is recomputed, so a 4000×3000 canvas stays smooth. The Document's bool mask (True = generate)
follows the session's coverage: a finished stroke hands its box of coverage to the session, and
`load`/`load_rect` re-read the document's coverage after any other change.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtGui import QImage

from fractal_studio.editing.windows import Rect

OVERLAY_RGB = (255, 64, 96)
OVERLAY_ALPHA = 0.45
REFRESH_ROWS = 256


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

    def load(self, coverage: np.ndarray) -> None:
        """Shows the document's coverage (uint8, 0 = keep), resizing the layer if needed."""
        h, w = coverage.shape
        if self.coverage.shape != (h, w):
            self.coverage = np.zeros((h, w), np.uint8)
            self.argb = np.zeros((h, w, 4), np.uint8)
            self.image = QImage(self.argb.data, w, h, w * 4, QImage.Format.Format_ARGB32_Premultiplied)
        self.coverage[...] = coverage
        self.refresh(Rect(0, 0, w, h))

    def load_rect(self, coverage: np.ndarray, rect: Rect) -> None:
        """Re-reads one rectangle of the document's coverage (undo/redo of a stroke)."""
        self.coverage[rect.slices] = coverage[rect.slices]
        self.refresh(rect)

    def refresh(self, box: Rect) -> None:
        # In bands of rows: the uint16 temporaries of a whole 6000x4000 mask would be 300 MB.
        for top in range(box.top, box.bottom, REFRESH_ROWS):
            self._refresh_band(Rect.spanning(box.left, top, box.right, min(top + REFRESH_ROWS, box.bottom)))

    def _refresh_band(self, box: Rect) -> None:
        rows, cols = box.slices
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
                      hardness: float, erase: bool) -> Rect | None:
        """Paints a round-brush segment from p0 to p1 (image coordinates); returns the touched box."""
        h, w = self.coverage.shape
        r = max(size / 2.0, 0.5)
        box = Rect.spanning(max(int(np.floor(min(p0[0], p1[0]) - r)), 0),
                            max(int(np.floor(min(p0[1], p1[1]) - r)), 0),
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
        rows, cols = box.slices
        target = self.coverage[rows, cols]
        if erase:
            np.minimum(target, 255 - cov, out=target)
        else:
            np.maximum(target, cov, out=target)
        self.refresh(box)
        return box

    def fill_rect(self, box: Rect, erase: bool = False) -> Rect | None:
        h, w = self.coverage.shape
        box = box.intersect(Rect(0, 0, w, h))
        if box.empty:
            return None
        self.coverage[box.slices] = 0 if erase else 255
        self.refresh(box)
        return box


def _segment_distance(xs, ys, p0, p1) -> np.ndarray:
    x0, y0 = p0
    dx, dy = p1[0] - x0, p1[1] - y0
    length2 = dx * dx + dy * dy
    if length2 < 1e-9:
        return np.hypot(xs - x0, ys - y0)
    t = np.clip(((xs - x0) * dx + (ys - y0) * dy) / length2, 0.0, 1.0)
    return np.hypot(xs - (x0 + t * dx), ys - (y0 + t * dy))
