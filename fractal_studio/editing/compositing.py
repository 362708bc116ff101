"""Putting generated pixels into the image: pure functions of the image, the mask and the fill.

Only pixels inside the mask ever change; outside it every result is the input, bit for bit.
"""

from __future__ import annotations

import numpy as np

from fractal_studio.editing.seamless import seamless_fills
from fractal_studio.editing.windows import Rect, feather_alpha


def blend(image: np.ndarray, mask: np.ndarray, box: Rect, generated: np.ndarray, feather: int = 0,
          blank: np.ndarray | None = None, weights: np.ndarray | None = None) -> np.ndarray:
    """The generated pixels of the mask's box `box` put into the image's box: inside the mask,
    feathered over `feather` pixels at its edge and weighted by a soft brush's coverage `weights`
    (uint8, 255 = all generated). `blank`: pixels with no original content (new outpainting
    canvas), which are never blended with. Returns the box's pixels."""
    rows, cols = box.slices
    inside = mask[rows, cols]
    target = image[rows, cols].copy()
    if feather > 0:
        # The ramp needs the keep pixels within `feather` of the box around it.
        height, width = mask.shape
        around = box.expanded(feather + 1).intersect(Rect(0, 0, width, height))
        alpha = feather_alpha(mask[around.slices], feather, None if blank is None else blank[around.slices])
        alpha = alpha[box.shifted(-around.left, -around.top).slices][..., None]
        mixed = np.rint(alpha * generated + (1.0 - alpha) * target).astype(np.uint8)
        target[inside] = mixed[inside]
    else:
        target[inside] = generated[inside]
    if weights is not None:
        weight = weights[rows, cols].astype(np.float32) / 255.0
        if blank is not None:  # nothing to blend with where there was no picture
            weight = np.where(blank[rows, cols], 1.0, weight)
        weight = weight[..., None]
        mixed = np.rint(weight * target + (1.0 - weight) * image[rows, cols]).astype(np.uint8)
        target[inside] = mixed[inside]
    return target


def match_colours(image: np.ndarray, mask: np.ndarray, box: Rect, generated: list[np.ndarray],
                  blank: np.ndarray | None = None) -> list[np.ndarray]:
    """Each candidate's generated box with its colour matched to the known pixels around the mask
    (seamless.seamless_fills, one solve for all); the known pixels one step outside the box take
    part too."""
    height, width = mask.shape
    around = box.expanded(1).intersect(Rect(0, 0, width, height))
    inner = box.shifted(-around.left, -around.top)
    fills = []
    for pixels_in_box in generated:
        pixels = image[around.slices].copy()
        pixels[inner.slices] = pixels_in_box
        fills.append(pixels)
    empty = None if blank is None else blank[around.slices]
    matched = seamless_fills(fills, image[around.slices], mask[around.slices], empty)
    return [fill[inner.slices] for fill in matched]
