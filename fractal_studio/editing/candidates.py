"""Candidates of an edit, stored compactly.

Every candidate equals the input image outside the mask, so a result keeps one shared reference to
the input image plus each candidate's pixels inside the mask's bounding box. Three candidates of a
small edit on a 6000x4000 photo then cost three small crops instead of 3 x 72 MB; a full image is
composed only when one is asked for (preview, apply, export).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from fractal_studio.editing.windows import Rect


class CandidateImages(Sequence):
    def __init__(self, base: np.ndarray, box: Rect, crops: list[np.ndarray]):
        # The editing layer never writes into an image in place (documents replace their arrays),
        # so sharing `base` is safe; a read-only view makes any accidental write fail loudly.
        self.base = base.view()
        self.base.flags.writeable = False
        self.box = box
        self.crops = crops

    def __len__(self) -> int:
        return len(self.crops)

    def __getitem__(self, index):
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        crop = self.crops[index]  # raises IndexError past the end, which ends iteration
        image = self.base.copy()
        image[self.box.slices] = crop
        return image

    def crop(self, index: int) -> np.ndarray:
        """Candidate `index` inside `box` only (cheap: for thumbnails and comparisons)."""
        return self.crops[index]

    def view(self, index: int, rect: Rect) -> np.ndarray:
        """Candidate `index` inside `rect` (within the image) only: no full-size copy is made."""
        pixels = self.base[rect.slices].copy()
        inside = self.box.intersect(rect)
        if not inside.empty:
            crop = self.crops[index][inside.shifted(-self.box.left, -self.box.top).slices]
            pixels[inside.shifted(-rect.left, -rect.top).slices] = crop
        return pixels

    @property
    def nbytes(self) -> int:
        return sum(c.nbytes for c in self.crops)
