"""A classical continuation of the known pixels into a hole, mixed into coarse-to-fine guides.

The model's layout and a continuation by diffusion (OpenCV's Navier–Stokes inpainting) err in
different ways: the model can invent a structure that is not there (a lighter patch of sky, a
treeline broken off), the diffusion carries the shades and edges that cross the hole's border
straight in and has no texture at all. A weighted mean of the two is nearer the truth than either
(benchmarks/quality.py photo), and because it is only the guide of the next scale, the model still
draws all of that scale's detail around it: the mean sets where the shades go, not the grain.
"""

from __future__ import annotations

import cv2
import numpy as np

from fractal_studio.editing.windows import Rect

# How far around the hole the diffusion looks, in the guide's pixels: enough for the edges that
# enter the hole to have a direction, small enough that a stroke's box stays the work.
CONTEXT = 16
RADIUS = 3.0  # OpenCV's neighbourhood for each filled pixel, in the guide's pixels


def continuation(image: np.ndarray, hole: np.ndarray, rect: Rect) -> np.ndarray:
    """uint8 [rect's h, w, 3]: `image` (uint8 [H, W, 3]) over `rect` with the pixels of `hole`
    (bool [H, W]) continued from the known pixels around them; the hole's pixel values in
    `image` are not read."""
    around = rect.expanded(CONTEXT).intersect(Rect(0, 0, image.shape[1], image.shape[0]))
    holed = image[around.slices].copy()
    unknown = hole[around.slices]
    holed[unknown] = 0
    filled = cv2.inpaint(holed, unknown.astype(np.uint8), RADIUS, cv2.INPAINT_NS)
    return filled[rect.shifted(-around.left, -around.top).slices]


def mixed_guides(fills: list[np.ndarray], continued: np.ndarray, region: np.ndarray,
                 share: float) -> list[np.ndarray]:
    """Each fill (uint8 [h, w, 3]) with its `region` pixels replaced by the mean of the fill's
    and `continued`'s, `share` of it from `continued`."""
    prior = continued.astype(np.float32)
    mixed_fills = []
    for fill in fills:
        mixed = np.rint((1.0 - share) * fill.astype(np.float32) + share * prior).astype(np.uint8)
        out = fill.copy()
        out[region] = mixed[region]
        mixed_fills.append(out)
    return mixed_fills
