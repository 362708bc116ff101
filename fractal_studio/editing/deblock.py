"""Softening the part of a fill deeper than the model fills well.

A small model fills well only near known pixels (its `hole_depth`); deeper inside it draws flat
patches of a guessed colour, and the patch edges show as blocks. When a hole cannot be made shallow
enough by working at a coarser scale (an outpainted strip is as deep as it is wide), the generated
pixels deeper than that are blended with a blur of themselves, the blur growing with the depth: the
fill keeps its colours and layout there and loses the block edges. Near the known pixels, where the
model's detail is right, the fill is untouched; known pixels are never changed.
"""

from __future__ import annotations

import cv2
import numpy as np


def deep_fill_weight(unknown: np.ndarray, depth: float, patch: int) -> np.ndarray | None:
    """float32 [H, W]: how much of the blur each pixel takes, 0 within `depth` (model pixels) of a
    known pixel, rising to 1 one `patch` (the model's smallest patch, the size of its blocks) deeper;
    None when no pixel is that deep. The same for every candidate of a run: made once."""
    if not unknown.any() or unknown.all():
        return None
    distance = cv2.distanceTransform(unknown.astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    weight = np.clip((distance - depth) / max(patch, 1), 0.0, 1.0)
    return weight if weight.any() else None


def soften_deep_fill(pixels: np.ndarray, weight: np.ndarray | None, patch: int) -> np.ndarray:
    """`pixels` (uint8 [H, W, 3], working scale) blended by `weight` (deep_fill_weight) with a blur
    of about `patch` pixels."""
    if weight is None:
        return pixels
    blurred = cv2.GaussianBlur(pixels, (0, 0), sigmaX=0.6 * patch, borderType=cv2.BORDER_REFLECT)
    mixed = pixels.astype(np.float32) + weight[..., None] * (blurred.astype(np.float32) - pixels)
    return np.clip(np.rint(mixed), 0, 255).astype(np.uint8)
