"""Placing the model's R×R windows over an unknown region, and the working-scale resampling.

Everything here is pure numpy/OpenCV on small arrays; no model and no Qt.

Window placement is greedy: each next window is the one that covers the most still-unknown pixels
while holding a band of known context (`margin` model pixels along one side: margin·R known pixels),
with ties going to the window whose newly covered pixels are best centred. A window is conditioned on
everything known when it runs (the image and the earlier windows' results), so windows overlap by the
margin and continue each other without seams.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from fractal_studio.geometry import Rect, bounding_rect


def union_rect(rects) -> Rect:
    rects = list(rects)
    left, top = min(r.left for r in rects), min(r.top for r in rects)
    right, bottom = max(r.right for r in rects), max(r.bottom for r in rects)
    return Rect(left, top, right - left, bottom - top)


# --------------------------------------------------------------------------------------- scales
def working_size(size: tuple[int, int], scale: float) -> tuple[int, int]:
    """(w, h) of an image of `size` (width, height) downscaled by `scale` (>= 1)."""
    width, height = size
    if scale == 1:
        return width, height
    return max(1, round(width / scale)), max(1, round(height / scale))


def source_edges(src: int, dst: int) -> tuple[np.ndarray, np.ndarray]:
    """For each of `dst` model pixels along an axis: the first and one-past-last source pixel that
    contributes to it when `src` pixels are area-averaged into `dst` (partial overlaps included)."""
    j = np.arange(dst, dtype=np.int64)
    return (j * src) // dst, -((-(j + 1) * src) // dst)


@dataclass(frozen=True)
class MaskCounts:
    """Summed-area table of a mask's bounding box (a small edit of a big photo stays small)."""

    shape: tuple[int, int]  # the whole mask's (height, width)
    box: Rect | None  # the mask's bounding box; None: nothing is masked
    table: np.ndarray | None  # [box.height + 1, box.width + 1]


def count_table(mask: np.ndarray) -> MaskCounts:
    """The counts to pass to working_unknown when trying several sizes of the same mask."""
    box = bounding_rect(mask)
    if box is None:
        return MaskCounts(mask.shape, None, None)
    crop = mask[box.slices]
    table = np.zeros((box.height + 1, box.width + 1), np.int32 if crop.size < 2**31 else np.int64)
    np.cumsum(crop, axis=0, dtype=table.dtype, out=table[1:, 1:])
    np.cumsum(table[1:, 1:], axis=1, out=table[1:, 1:])
    return MaskCounts(mask.shape, box, table)


def working_unknown(mask: np.ndarray, size: tuple[int, int], counts: MaskCounts | None = None) -> np.ndarray:
    """bool [h, w]: a model pixel is unknown if ANY of its source pixels is (known only if all are)."""
    height, width = mask.shape
    w, h = size
    if (w, h) == (width, height):
        return mask.copy()
    counts = count_table(mask) if counts is None else counts
    unknown = np.zeros((h, w), bool)
    box = counts.box
    if box is None:
        return unknown
    # Only model pixels whose source span meets the box can be unknown; count inside the box.
    x0, x1 = source_edges(width, w)
    y0, y1 = source_edges(height, h)
    cols = np.flatnonzero((x1 > box.left) & (x0 < box.right))
    rows = np.flatnonzero((y1 > box.top) & (y0 < box.bottom))
    cx0, cx1 = (np.clip(e[cols] - box.left, 0, box.width) for e in (x0, x1))
    cy0, cy1 = (np.clip(e[rows] - box.top, 0, box.height) for e in (y0, y1))
    table = counts.table
    found = table[cy1][:, cx1] - table[cy0][:, cx1] - table[cy1][:, cx0] + table[cy0][:, cx0]
    unknown[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1] = found > 0
    return unknown


def downscale(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Area-filtered (cv2.INTER_AREA) downscale to size (w, h)."""
    if (image.shape[1], image.shape[0]) == tuple(size):
        return image.copy()
    return cv2.resize(image, tuple(size), interpolation=cv2.INTER_AREA)


def upscale_region(work: np.ndarray, work_origin: tuple[int, int], scale_xy: tuple[float, float],
                   dst: Rect) -> np.ndarray:
    """Bicubic upscale of working-scale pixels to the image pixels of `dst` (image coordinates).

    work: uint8 [h', w', 3], a crop of the working image whose (0, 0) lies at `work_origin` (x, y) in
    working coordinates. scale_xy: image pixels per working pixel along x and y. The mapping is the
    one cv2.resize uses for the whole image (pixel centres aligned), so crops give the same pixels as
    a full resize wherever the crop has 2+ pixels of context; values are clipped to 0..255.
    """
    sx, sy = scale_xy
    ox, oy = work_origin
    matrix = np.array([[1.0 / sx, 0.0, (dst.left + 0.5) / sx - 0.5 - ox],
                       [0.0, 1.0 / sy, (dst.top + 0.5) / sy - 0.5 - oy]], np.float64)
    return cv2.warpAffine(work, matrix, (dst.width, dst.height), flags=cv2.INTER_CUBIC | cv2.WARP_INVERSE_MAP,
                          borderMode=cv2.BORDER_REPLICATE)


def to_image_rect(rect: Rect, scale_xy: tuple[float, float], image_size: tuple[int, int]) -> Rect:
    """The image pixels that a working-scale rectangle covers, clipped to the image."""
    sx, sy = scale_xy
    left, top = math.floor(rect.left * sx), math.floor(rect.top * sy)
    right, bottom = math.ceil(rect.right * sx), math.ceil(rect.bottom * sy)
    width, height = image_size
    return Rect(left, top, right - left, bottom - top).intersect(Rect(0, 0, width, height))


# ------------------------------------------------------------------------------------ windows
def padded_shape(shape: tuple[int, int], resolution: int) -> tuple[int, int]:
    """Working arrays are padded (right/bottom) to at least one window; the padding is never output."""
    return max(shape[0], resolution), max(shape[1], resolution)


def mirrored(image: np.ndarray, known: np.ndarray, area: Rect) -> tuple[np.ndarray, np.ndarray]:
    """`image` (uint8 [H, W, 3]) and `known` (bool [H, W]) over `area`, which may reach past the
    image on any side: there as the image mirrored at its edges (the edge pixel not repeated).
    Windows reach past a working image smaller than a window or at its border; a mirror there
    gives the model context like its training crops had, and pixels it need not draw, where
    padding it had to invent slowed the fill and could lead it astray."""
    def mirror(start: int, stop: int, size: int) -> np.ndarray:
        period = max(2 * size - 2, 1)
        index = np.abs(np.arange(start, stop)) % period
        return np.where(index >= size, period - index, index)

    height, width = known.shape
    rows = mirror(area.top, area.bottom, height)
    cols = mirror(area.left, area.right, width)
    return image[rows][:, cols], known[rows][:, cols]


def lower_bound_windows(unknown: np.ndarray, resolution: int) -> int:
    return math.ceil(int(unknown.sum()) / (resolution * resolution))


def place_windows(unknown: np.ndarray, resolution: int, margin: int, limit: int | None = None) -> list[Rect]:
    """Greedy cover of the unknown pixels of `unknown` (bool [h, w], working scale) by R×R windows.

    Windows may reach past the right/bottom edge only when the image is smaller than R there (see
    padded_shape). Stops after `limit` + 1 windows when a limit is given (enough to know it is over).

    Scores are kept for every candidate corner and only recomputed around the window just placed,
    with per-block maxima for the search, so hundreds of windows over a big image plan in moments.
    """
    size = resolution
    ph, pw = padded_shape(unknown.shape, size)
    h, w = unknown.shape
    todo = np.zeros((ph, pw), bool)
    todo[:h, :w] = unknown
    known = np.zeros((ph, pw), bool)
    known[:h, :w] = ~unknown
    remaining = int(todo.sum())
    box = bounding_rect(todo)
    if box is None:
        return []
    # Candidate top-left corners: windows that can touch the unknown pixels (todo only shrinks).
    y_lo, y_hi = max(0, box.top - size + 1), min(ph - size, box.bottom - 1)
    x_lo, x_hi = max(0, box.left - size + 1), min(pw - size, box.right - 1)
    target = margin * size  # known pixels worth a margin-wide band along one side
    ny, nx = y_hi - y_lo + 1, x_hi - x_lo + 1
    block = size
    by, bx = -(-ny // block), -(-nx // block)
    score = np.full((by * block, bx * block), -np.inf)

    def update(r0: int, r1: int, c0: int, c1: int) -> None:
        """Recompute the scores of corners r0..r1-1 × c0..c1-1 (grid indices) and their blocks' maxima."""
        r0, c0 = max(r0, 0), max(c0, 0)
        r1, c1 = min(r1, ny), min(c1, nx)
        if r0 >= r1 or c0 >= c1:
            return
        pixels = (slice(y_lo + r0, y_lo + r1 - 1 + size), slice(x_lo + c0, x_lo + c1 - 1 + size))
        score[r0:r1, c0:c1] = _scores(todo[pixels], known[pixels], size, target)
        b0, b1 = r0 // block, -(-r1 // block)
        d0, d1 = c0 // block, -(-c1 // block)
        tile = score[b0 * block:b1 * block, d0 * block:d1 * block]
        maxima[b0:b1, d0:d1] = tile.reshape(b1 - b0, block, d1 - d0, block).max(axis=(1, 3))

    maxima = np.full((by, bx), -np.inf)
    update(0, ny, 0, nx)
    windows: list[Rect] = []
    while remaining > 0:
        if limit is not None and len(windows) > limit:
            break
        bi, bj = np.unravel_index(int(np.argmax(maxima)), maxima.shape)
        tile = score[bi * block:(bi + 1) * block, bj * block:(bj + 1) * block]
        ti, tj = np.unravel_index(int(np.argmax(tile)), tile.shape)
        r, c = int(bi * block + ti), int(bj * block + tj)
        rect = Rect(x_lo + c, y_lo + r, size, size)
        windows.append(rect)
        rows, cols = rect.slices
        remaining -= int(todo[rows, cols].sum())
        known[rows, cols] |= todo[rows, cols]
        todo[rows, cols] = False
        update(r - size + 1, r + size, c - size + 1, c + size)
    return windows


def anchor_windows(windows: list[Rect], unknown: np.ndarray, resolution: int,
                   patches: tuple[int, ...]) -> list[Rect]:
    """Shifts each window by up to half a top-level patch so that the unknown pixels it fills share
    their patches with known pixels as much as possible.

    patches: the patch side of each level, top first (e.g. 16, 4 for 64 -> 16 -> 4 -> 1).

    The model's top level sees the image as a grid of `patch`-sized patches. A patch with some known
    pixels is filled from them (they are context inside it, level after level); a patch with none
    gets only the top level's summary of its neighbours, and a small model fills it with a flat
    block of the wrong colour. A seam that falls on a patch edge (an outpaint strip half a window
    wide, say) leaves every new patch without a known pixel: shifting the window by half a patch
    puts the seam inside the patches instead. Each window keeps every pixel it had to fill (the
    union still covers the region) and may reach up to half a patch past the padded image; those
    pixels are generated and thrown away. Windows run in order, so each is scored with the pixels
    filled by the ones before it counted as known. A patch counts most when it is half known, half
    new (known x new pixels); the levels' scores are added, so an edge lands inside the patches of
    the lower levels too (measured: seam jump 2.3x mid top-level patch, 1.7x also mid 4-pixel patch).
    """
    patch = patches[0]
    half = patch // 2
    if half < 1 or not windows:
        return list(windows)
    ph, pw = padded_shape(unknown.shape, resolution)
    h, w = unknown.shape
    known = np.zeros((ph + 2 * half, pw + 2 * half), bool)
    todo = np.zeros_like(known)
    known[half:half + h, half:half + w] = ~unknown
    todo[half:half + h, half:half + w] = unknown
    step = max(1, half // 4)
    shifts = sorted({*range(-half, half + 1, step), half, 0}, key=abs)
    anchored: list[Rect] = []
    for rect in windows:
        rows, cols = rect.shifted(half, half).slices
        needed = bounding_rect(todo[rows, cols])
        best = rect
        if needed is not None:
            needed = needed.shifted(rect.left, rect.top)
            best_score = _anchoring(known, todo, rect.shifted(half, half), patches)
            for dy in shifts:
                for dx in shifts:
                    candidate = rect.shifted(dx, dy)
                    if (candidate.left < -half or candidate.top < -half or candidate.right > pw + half
                            or candidate.bottom > ph + half or not _contains(candidate, needed)):
                        continue
                    score = _anchoring(known, todo, candidate.shifted(half, half), patches)
                    if score > best_score:
                        best, best_score = candidate, score
        anchored.append(best)
        rows, cols = best.shifted(half, half).slices
        known[rows, cols] |= todo[rows, cols]
        todo[rows, cols] = False
    return anchored


def _contains(outer: Rect, inner: Rect) -> bool:
    return (outer.left <= inner.left and outer.top <= inner.top and outer.right >= inner.right
            and outer.bottom >= inner.bottom)


def _anchoring(known: np.ndarray, todo: np.ndarray, rect: Rect, patches: tuple[int, ...]) -> float:
    """How well the new pixels of `rect` sit next to known ones inside the patches of every level:
    the sum over patches of known x new pixels / patch area (largest for half-known patches)."""
    rows, cols = rect.slices
    total = 0.0
    for patch in patches:
        grid = rect.width // patch
        have = known[rows, cols].reshape(grid, patch, grid, patch).sum(axis=(1, 3))
        new = todo[rows, cols].reshape(grid, patch, grid, patch).sum(axis=(1, 3))
        total += float((have * new).sum()) / (patch * patch)
    return total


def _scores(todo: np.ndarray, known: np.ndarray, size: int, target: int) -> np.ndarray:
    """Score of every size×size window of a pixel region (by top-left corner); -inf if it covers no
    unknown pixel. More new pixels, a known band worth `target` pixels, new pixels centred."""
    t = todo.astype(np.float64)
    ys, xs = np.indices(t.shape, dtype=np.float64)
    new = _window_sums(t, size)
    ctx = _window_sums(known.astype(np.float64), size)
    cx = _window_sums(t * xs, size)
    cy = _window_sums(t * ys, size)
    centre = (size - 1) / 2.0
    with np.errstate(invalid="ignore", divide="ignore"):
        off_x = cx / new - (np.arange(new.shape[1])[None, :] + centre)
        off_y = cy / new - (np.arange(new.shape[0])[:, None] + centre)
        off = np.nan_to_num(np.hypot(off_x, off_y), nan=0.0)
    score = new + 2.0 * np.minimum(ctx, target) + 1e-3 * ctx - 0.5 * off
    score[new < 0.5] = -np.inf
    return score


def _window_sums(values: np.ndarray, size: int) -> np.ndarray:
    """Sum over every size×size window (indexed by its top-left corner) via a summed-area table."""
    table = np.zeros((values.shape[0] + 1, values.shape[1] + 1), np.float64)
    table[1:, 1:] = values.cumsum(0).cumsum(1)
    return table[size:, size:] - table[:-size, size:] - table[size:, :-size] + table[:-size, :-size]


def feather_alpha(mask: np.ndarray, feather: int, blank: np.ndarray | None = None) -> np.ndarray:
    """float32 [H, W] in 0..1: 0 outside the mask, ramping up to 1 over `feather` pixels inside its edge.

    Pixels in `blank` (no original content, e.g. a new outpainting area) are always 1, and so is their
    distance: the ramp only blends generated pixels with real original pixels under the mask.
    """
    if feather <= 0:
        return mask.astype(np.float32)
    keep = ~mask
    src = np.where(keep, 0, 255).astype(np.uint8)
    distance = cv2.distanceTransform(src, cv2.DIST_L2, 5)
    alpha = np.clip(distance / float(feather + 1), 0.0, 1.0).astype(np.float32)
    alpha[keep] = 0.0
    if blank is not None:
        alpha[mask & blank] = 1.0
    return alpha
