"""How unsure the model was of a fill: per-pixel bits, and the patches to draw again.

The sampler records, for each pixel it draws, the entropy in bits (summed over R, G and B, so
0..24) of the distributions it drew the pixel's values from (SampleRequest.uncertainty). An edit
carries those maps at its working scale and hands each candidate's map over at the image's scale,
over the mask's box (`EditResult.uncertainty`): an image pixel has the bits of the working pixel
its centre lies in. In a coarse-to-fine fill a pixel's bits are those of the finest scale that drew
it: the finer scales keep every second pixel of the coarser fill as a guide and draw the rest, so
a guide pixel keeps the bits of the scale that drew it. Pixels outside the mask are NaN.

"Re-roll unsure parts": the patches (the model's smallest pixel patch, at the working scale) whose
mean bits are above a threshold become the hole of a new inpaint whose known pixels are the
candidate, so everything else stays bit for bit.
"""

from __future__ import annotations

import numpy as np

from fractal_studio.errors import UserError
from fractal_studio.geometry import Rect

DEFAULT_QUANTILE = 0.8  # re-roll the patches less sure than four in five of the fill's patches
MAX_BITS = 24.0  # 8 bits for each of R, G and B: a uniform draw


def working_to_image(bits: np.ndarray, origin: tuple[int, int], scale_xy: tuple[float, float],
                     box: Rect) -> np.ndarray:
    """float32 [box.height, box.width]: the working-scale map `bits` (whose (0, 0) lies at `origin`
    (x, y) in working coordinates) at the image pixels of `box`, each pixel taking the working pixel
    its centre lies in; NaN past the map."""
    sx, sy = scale_xy
    ox, oy = origin
    ys = np.floor((np.arange(box.top, box.bottom) + 0.5) / sy).astype(np.int64) - oy
    xs = np.floor((np.arange(box.left, box.right) + 0.5) / sx).astype(np.int64) - ox
    out = np.full((box.height, box.width), np.nan, np.float32)
    rows, cols = (ys >= 0) & (ys < bits.shape[0]), (xs >= 0) & (xs < bits.shape[1])
    out[np.ix_(rows, cols)] = bits[np.ix_(ys[rows], xs[cols])]
    return out


def finest_drawn(finer: np.ndarray, coarser: np.ndarray) -> np.ndarray:
    """Each pixel's bits from the finer scale where it drew the pixel, else from the coarser one."""
    return np.where(np.isnan(finer), coarser, finer).astype(np.float32)


def full_map(bits_in_box: np.ndarray, box: Rect, shape: tuple[int, int]) -> np.ndarray:
    """The box's map placed in an image-sized float32 map [H, W] (NaN elsewhere)."""
    out = np.full(shape, np.nan, np.float32)
    out[box.slices] = bits_in_box
    return out


def patch_scores(bits: np.ndarray, patch: int) -> np.ndarray:
    """float32 [ceil(H / patch), ceil(W / patch)]: each patch's mean bits over its drawn pixels
    (NaN where it drew none)."""
    height, width = bits.shape
    rows, cols = -(-height // patch), -(-width // patch)
    padded = np.full((rows * patch, cols * patch), np.nan, np.float32)
    padded[:height, :width] = bits
    blocks = padded.reshape(rows, patch, cols, patch).transpose(0, 2, 1, 3).reshape(rows, cols, -1)
    drawn = ~np.isnan(blocks)
    counts = drawn.sum(-1)
    sums = np.where(drawn, blocks, 0.0).sum(-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(counts > 0, sums / np.maximum(counts, 1), np.nan).astype(np.float32)


def default_threshold(scores: np.ndarray, quantile: float = DEFAULT_QUANTILE) -> float:
    """The `quantile` of the patches' scores: the bits above which a patch is re-rolled."""
    if not 0.0 <= quantile < 1.0:
        raise UserError(f"the re-roll quantile must be at least 0 and below 1, got {quantile}")
    drawn = scores[~np.isnan(scores)]
    if drawn.size == 0:
        raise UserError("this candidate has no recorded uncertainty: generate it again")
    return float(np.quantile(drawn, quantile))


def unsure_mask(bits: np.ndarray, mask: np.ndarray, patch: int, quantile: float = DEFAULT_QUANTILE,
                threshold: float | None = None) -> np.ndarray:
    """bool [H, W]: the pixels of the mask inside the patches (of `patch` image pixels, on the image's
    grid) whose mean bits are above `threshold` (bits; default: the `quantile` of the patches'
    scores). `bits` is the candidate's image-sized map (full_map)."""
    if bits.shape != mask.shape:
        raise UserError("the uncertainty map must have the image's size")
    patch = max(1, int(patch))
    scores = patch_scores(np.where(mask, bits, np.nan), patch)
    limit = default_threshold(scores, quantile) if threshold is None else float(threshold)
    chosen = np.nan_to_num(scores, nan=-1.0) > limit
    pixels = np.repeat(np.repeat(chosen, patch, axis=0), patch, axis=1)[:mask.shape[0], :mask.shape[1]]
    return pixels & mask


def image_patch(patch_sizes: tuple[int, ...], scale: float) -> int:
    """The model's smallest pixel patch (its last level above the head) in image pixels at a working
    scale of `scale` image pixels per model pixel."""
    smallest = min((p for p in patch_sizes if p >= 2), default=1)
    return max(1, int(round(smallest * scale)))


def heat_image(bits: np.ndarray, top: float = MAX_BITS) -> np.ndarray:
    """uint8 [H, W] greyscale of the map: 0 = certain (or not drawn), 255 = `top` bits or more."""
    values = np.nan_to_num(bits, nan=0.0) / float(top)
    return np.clip(np.rint(values * 255.0), 0, 255).astype(np.uint8)
