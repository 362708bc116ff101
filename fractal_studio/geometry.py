"""Rectangles of pixels and the bounding box of a mask: one type for the whole package (no Qt)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["Rect", "bounding_rect"]


@dataclass(frozen=True)
class Rect:
    """A rectangle of pixels: columns left..right-1, rows top..bottom-1."""

    left: int
    top: int
    width: int
    height: int

    @property
    def right(self) -> int:
        return self.left + self.width

    @property
    def bottom(self) -> int:
        return self.top + self.height

    @property
    def slices(self) -> tuple[slice, slice]:
        """(rows, cols) for indexing an array; the rectangle must lie inside it."""
        return slice(self.top, self.bottom), slice(self.left, self.right)

    def intersect(self, other: Rect) -> Rect:
        left, top = max(self.left, other.left), max(self.top, other.top)
        right, bottom = min(self.right, other.right), min(self.bottom, other.bottom)
        return Rect(left, top, max(0, right - left), max(0, bottom - top))

    def expanded(self, by: int) -> Rect:
        return Rect(self.left - by, self.top - by, self.width + 2 * by, self.height + 2 * by)

    def shifted(self, dx: int, dy: int) -> Rect:
        return Rect(self.left + dx, self.top + dy, self.width, self.height)

    @property
    def empty(self) -> bool:
        return self.width <= 0 or self.height <= 0

    @classmethod
    def spanning(cls, left: int, top: int, right: int, bottom: int) -> Rect:
        """The rectangle from its edges (right and bottom exclusive)."""
        return cls(int(left), int(top), int(right) - int(left), int(bottom) - int(top))

    def union(self, other: Rect | None) -> Rect:
        """The smallest rectangle holding both (an empty or missing one adds nothing)."""
        if other is None or other.empty:
            return self
        if self.empty:
            return other
        return Rect.spanning(min(self.left, other.left), min(self.top, other.top),
                             max(self.right, other.right), max(self.bottom, other.bottom))


def bounding_rect(mask: np.ndarray) -> Rect | None:
    """The smallest Rect holding every True pixel of a 2-D mask, or None if there is none."""
    rows = np.flatnonzero(mask.any(1))
    if rows.size == 0:
        return None
    cols = np.flatnonzero(mask.any(0))
    return Rect(int(cols[0]), int(rows[0]), int(cols[-1] - cols[0] + 1), int(rows[-1] - rows[0] + 1))
