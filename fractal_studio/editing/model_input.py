"""Images brought to a model's input format (no Qt): what `likelihood` and `classify` score.

"centre" (the paper's ImageNet preprocessing): scaled so the shorter side is the model's resolution,
cut to the centred square. "pad" (the Fashion-MNIST model's training data): the centred square at the
resolution less 4, in grey, padded with 2 pixels of black on each side and repeated over R, G, B.
"""

from __future__ import annotations

import numpy as np

RECIPES = ("centre", "pad")
PAD = 2


def centre_square(pixels: np.ndarray, side: int) -> np.ndarray:
    """The centred square of an image scaled so that its shorter side is `side` (area averaging)."""
    import cv2

    height, width = pixels.shape[:2]
    scale = side / min(height, width)
    size = (max(side, round(width * scale)), max(side, round(height * scale)))
    scaled = cv2.resize(pixels, size, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC)
    top, left = (size[1] - side) // 2, (size[0] - side) // 2
    return scaled[top:top + side, left:left + side]


def padded_grey(pixels: np.ndarray, side: int) -> np.ndarray:
    """The Fashion-MNIST recipe: grey centred square of side - 4, black border of 2, grey over RGB."""
    inner = centre_square(pixels, side - 2 * PAD)
    weights = np.array([0.299, 0.587, 0.114])  # ITU-R 601 luma, as Pillow's "L"
    grey = np.clip(np.rint(inner.astype(np.float64) @ weights), 0, 255).astype(np.uint8)
    out = np.zeros((side, side, 3), np.uint8)
    out[PAD:side - PAD, PAD:side - PAD] = grey[..., None]
    return out


def model_input(pixels: np.ndarray, side: int, recipe: str = "centre") -> np.ndarray:
    """RGB uint8 [H, W, 3] -> the model's input [side, side, 3] by `recipe` (one of RECIPES)."""
    if recipe == "pad":
        return padded_grey(pixels, side)
    if recipe != "centre":
        raise ValueError(f"unknown input recipe {recipe!r}; the recipes are {', '.join(RECIPES)}")
    return centre_square(pixels, side)
