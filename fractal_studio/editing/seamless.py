"""Matching a fill's colours to the photo around it (gradient-domain blending).

A small model gets the detail of a fill roughly right more often than its slowly varying colour: a
strip of sky comes back a shade too dark, and the border shows as a seam. Here the generated region
keeps its own pixel-to-pixel differences while a smooth correction makes it continue the known pixels
at its border. The corrected pixels u solve the discrete Poisson equation inside the region with the
generated pixels' own gradients as guidance and no jump across the border (Pérez, Gangnet, Blake,
"Poisson image editing", 2003). Written for the correction f = u - g that is Laplace's equation:

    for every region pixel p:  deg(p)·f_p − Σ_{q in region} f_q = Σ_{q known} (k_q − g_p)

deg(p) counts p's neighbours inside the image (the image's edge is a free border, so an outpainted
strip is pulled only by the photo it continues). Known pixels are never touched.

It is solved by conjugate gradients over the region's pixels only, started from the same problem
solved at half the size, recursively: the smooth part of the answer comes from the coarse sizes, and
a few dozen iterations per size fix the rest. Every size is kept as lists of the region's pixels and
of the known pixels at its border, never as arrays of the region's bounding box: a brush stroke
across a 12-megapixel photo covers a few percent of its box. Several fills of the same region (the
candidates of one edit) are solved as one system with more colour channels: the matrix is theirs
in common.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

DIRECTIONS = ((-1, 0), (1, 0), (0, -1), (0, 1))
DIRECT_PIXELS = 4096  # at most this many region pixels: solve at this size without a coarser start
FINE_ITERATIONS = 40  # conjugate-gradient steps per size above the coarsest
COARSE_ITERATIONS = 400
TOLERANCE = 0.01  # stop when the largest residual is below this (8-bit levels)
GATHER_PIXELS = 1 << 20  # native pixels read at once when averaging the border's coarse blocks


def seamless_fill(generated: np.ndarray, known_pixels: np.ndarray, region: np.ndarray,
                  empty: np.ndarray | None = None) -> np.ndarray:
    """The generated pixels with their colour matched to the known ones around them.

    generated, known_pixels: [H, W, 3] arrays (any real dtype) of the same area; region: bool [H, W],
    True where `generated` holds the fill; empty: optional bool [H, W], pixels outside the region
    that hold no picture (an outpainting canvas not yet filled): they pull on nothing, like the
    image's edge. Returns uint8 [H, W, 3]: inside the region the corrected fill (rounded, clipped to
    0..255), outside it `known_pixels` unchanged.
    """
    return seamless_fills([generated], known_pixels, region, empty)[0]


def seamless_fills(generated: Sequence[np.ndarray], known_pixels: np.ndarray, region: np.ndarray,
                   empty: np.ndarray | None = None) -> list[np.ndarray]:
    """seamless_fill for several fills of the same region at once (one solve): each result is what
    seamless_fill gives that fill, up to the solver's tolerance."""
    region = np.asarray(region, bool)
    if not generated:
        return []
    for fill in generated:
        if fill.shape != known_pixels.shape or fill.shape[:2] != region.shape:
            raise ValueError("generated pixels, known pixels and region must have the same size")
    if empty is not None and np.asarray(empty).shape != region.shape:
        raise ValueError("the empty-area mask must have the region's size")
    results = [np.array(known_pixels, dtype=np.uint8, copy=True) for _ in generated]
    ys, xs = np.nonzero(region)
    if len(ys) == 0:
        return results
    usable = None if empty is None else ~np.asarray(empty, bool) | region
    border = _Border(np.asarray(known_pixels), region, usable)
    g = np.concatenate([fill[ys, xs].astype(np.float32) for fill in generated], axis=1)
    correction = _solve(border, ys, xs, g, np.ones(len(ys), np.float32), 1)
    for c, result in enumerate(results):
        channels = slice(3 * c, 3 * c + 3)
        result[ys, xs] = np.clip(np.rint(g[:, channels] + correction[:, channels]), 0, 255).astype(np.uint8)
    return results


class _Border:
    """The known pixels, read where a size's border needs them: at a size with blocks of s x s
    pixels, a known block's value is the mean of its native known pixels (usable, outside the
    region), and a block with none pulls on nothing."""

    def __init__(self, known_pixels: np.ndarray, region: np.ndarray, usable: np.ndarray | None):
        self.k, self.region, self.usable = known_pixels, region, usable
        self.height, self.width = region.shape

    def shape(self, size: int) -> tuple[int, int]:
        return -(-self.height // size), -(-self.width // size)

    def blocks(self, by: np.ndarray, bx: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
        """(sum [m, 3], count [m]) of the known native pixels in the blocks (by, bx) of size x size."""
        sums = np.zeros((len(by), 3), np.float64)
        counts = np.zeros(len(by), np.int64)
        step = max(1, GATHER_PIXELS // (size * size))
        offsets = np.arange(size)
        for first in range(0, len(by), step):
            part = slice(first, first + step)
            rows = (by[part, None] * size + offsets)[:, :, None]
            cols = (bx[part, None] * size + offsets)[:, None, :]
            inside = (rows < self.height) & (cols < self.width)
            rows, cols = np.minimum(rows, self.height - 1), np.minimum(cols, self.width - 1)
            known = inside & ~self.region[rows, cols]
            if self.usable is not None:
                known &= self.usable[rows, cols]
            sums[part] = (self.k[rows, cols].astype(np.float64) * known[..., None]).sum((1, 2))
            counts[part] = known.sum((1, 2))
        return sums, counts


class _Problem:
    """The linear system of one size: region blocks as a list, each with its 4 neighbours."""

    def __init__(self, border: _Border, ys: np.ndarray, xs: np.ndarray, g: np.ndarray, size: int):
        height, width = border.shape(size)
        self.ys, self.xs = ys, xs
        n = len(ys)
        keys = ys * width + xs  # ascending: the blocks come in np.nonzero (row-major) order
        self.degree = np.zeros(n, np.float32)
        known_sum = np.zeros((n, 3), np.float32)
        known_count = np.zeros(n, np.float32)
        self.neighbours = []  # per direction: the neighbour's region index, or n (a zero slot)
        for dy, dx in DIRECTIONS:
            ny, nx = ys + dy, xs + dx
            inside = (ny >= 0) & (ny < height) & (nx >= 0) & (nx < width)
            wanted = ny * width + nx
            at = np.minimum(np.searchsorted(keys, wanted), n - 1)
            in_region = inside & (keys[at] == wanted)
            neighbour = np.where(in_region, at, n)
            outside = np.flatnonzero(inside & ~in_region)
            pulls = np.zeros(n, bool)
            if len(outside):
                blocks, which = np.unique(wanted[outside], return_inverse=True)
                sums, counts = border.blocks(blocks // width, blocks % width, size)
                has_known = counts[which] > 0
                pulls[outside[has_known]] = True
                mean = sums[which[has_known]] / counts[which[has_known], None]
                known_sum[outside[has_known]] += mean.astype(np.float32)
                known_count[outside[has_known]] += 1
            self.degree += in_region | pulls
            self.neighbours.append(neighbour)
        # Across the border: no jump from the fill to the known pixel, for every fill's channels.
        fills = g.shape[1] // 3
        self.rhs = np.tile(known_sum, (1, fills)) - known_count[:, None] * g

    def operator(self):
        """f [n, C] -> the matrix times f, in torch: its gathers run on every core, about
        three times numpy's speed here (see benchmarks/edit_time.py for the whole edit).
        PyTorch is imported here, not with the module: the app's window loads without it."""
        import torch

        degree = torch.from_numpy(self.degree).unsqueeze(1)
        neighbours = [torch.from_numpy(neighbour) for neighbour in self.neighbours]

        def apply(f: torch.Tensor) -> torch.Tensor:
            padded = torch.cat([f, f.new_zeros(1, f.shape[1])])  # row n: the zero slot
            out = degree * f
            for neighbour in neighbours:
                out -= padded.index_select(0, neighbour)
            return out

        return apply


def _solve(border: _Border, ys: np.ndarray, xs: np.ndarray, g: np.ndarray, weight: np.ndarray,
           size: int) -> np.ndarray:
    """The correction f [n, C] for the region's blocks (ys, xs) of size x size native pixels, whose
    generated values are g [n, C], each the mean of `weight` native region pixels."""
    problem = _Problem(border, ys, xs, g, size)
    n = len(ys)
    if n <= DIRECT_PIXELS or min(border.shape(size)) < 4:
        return _conjugate_gradients(problem, np.zeros_like(g), COARSE_ITERATIONS)
    # Half the size: a 2x2 block is region if any of its blocks is; its generated value is the
    # mean of its native region pixels.
    _, width = border.shape(2 * size)
    keys, inverse = np.unique((ys // 2) * width + xs // 2, return_inverse=True)
    coarse_weight = np.bincount(inverse, weight).astype(np.float32)
    coarse_g = np.stack([np.bincount(inverse, g[:, c] * weight) for c in range(g.shape[1])], 1)
    coarse_g = (coarse_g / coarse_weight[:, None]).astype(np.float32)
    coarse = _solve(border, keys // width, keys % width, coarse_g, coarse_weight, 2 * size)
    return _conjugate_gradients(problem, coarse[inverse], FINE_ITERATIONS)


def _conjugate_gradients(problem: _Problem, f: np.ndarray, iterations: int) -> np.ndarray:
    """A few steps of CG for each colour channel at once (the matrix is the same for all)."""
    import torch

    apply = problem.operator()
    f = torch.from_numpy(np.ascontiguousarray(f, np.float32))
    residual = torch.from_numpy(np.ascontiguousarray(problem.rhs, np.float32)) - apply(f)
    direction = residual.clone()
    rr = (residual * residual).sum(0)
    zero = torch.zeros(())
    for _ in range(iterations):
        if float(residual.abs().max()) < TOLERANCE:
            break
        step = apply(direction)
        curvature = (direction * step).sum(0)
        alpha = torch.where(curvature > 0, rr / torch.where(curvature > 0, curvature, 1.0), zero)
        f = f + alpha * direction
        residual = residual - alpha * step
        rr_new = (residual * residual).sum(0)
        beta = torch.where(rr > 0, rr_new / torch.where(rr > 0, rr, 1.0), zero)
        direction = residual + beta * direction
        rr = rr_new
    return f.numpy()
