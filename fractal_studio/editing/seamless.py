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

It is solved by conjugate gradients over the region's pixels only (a brush stroke on a 12-megapixel
photo stays small), started from the same problem solved at half the size, recursively: the smooth
part of the answer comes from the coarse sizes, and a few dozen iterations per size fix the rest.
"""

from __future__ import annotations

import numpy as np

DIRECTIONS = ((-1, 0), (1, 0), (0, -1), (0, 1))
DIRECT_PIXELS = 4096  # at most this many region pixels: solve at this size without a coarser start
FINE_ITERATIONS = 40  # conjugate-gradient steps per size above the coarsest
COARSE_ITERATIONS = 400
TOLERANCE = 0.01  # stop when the largest residual is below this (8-bit levels)


def seamless_fill(generated: np.ndarray, known_pixels: np.ndarray, region: np.ndarray,
                  empty: np.ndarray | None = None) -> np.ndarray:
    """The generated pixels with their colour matched to the known ones around them.

    generated, known_pixels: [H, W, 3] arrays (any real dtype) of the same area; region: bool [H, W],
    True where `generated` holds the fill; empty: optional bool [H, W], pixels outside the region
    that hold no picture (an outpainting canvas not yet filled): they pull on nothing, like the
    image's edge. Returns uint8 [H, W, 3]: inside the region the corrected fill (rounded, clipped to
    0..255), outside it `known_pixels` unchanged.
    """
    region = np.asarray(region, bool)
    if generated.shape != known_pixels.shape or generated.shape[:2] != region.shape:
        raise ValueError("generated pixels, known pixels and region must have the same size")
    if empty is not None and np.asarray(empty).shape != region.shape:
        raise ValueError("the empty-area mask must have the region's size")
    g = generated.astype(np.float32)
    k = known_pixels.astype(np.float32)
    result = np.array(known_pixels, dtype=np.uint8, copy=True)
    if not region.any():
        return result
    usable = None if empty is None else ~np.asarray(empty, bool) | region
    correction = _solve(g, k, region, usable)
    result[region] = np.clip(np.rint(g[region] + correction), 0, 255).astype(np.uint8)
    return result


class _Problem:
    """The linear system of one size: region pixels as a list, each with its 4 neighbours."""

    def __init__(self, g: np.ndarray, k: np.ndarray, region: np.ndarray, usable: np.ndarray | None):
        height, width = region.shape
        self.ys, self.xs = np.nonzero(region)
        n = len(self.ys)
        index = np.full(region.shape, -1, np.int64)
        index[self.ys, self.xs] = np.arange(n)
        self.degree = np.zeros(n, np.float32)
        self.rhs = np.zeros((n, 3), np.float32)
        self.neighbours = []  # per direction: the neighbour's region index, or n (a zero slot)
        g_here = g[self.ys, self.xs]
        for dy, dx in DIRECTIONS:
            ny, nx = self.ys + dy, self.xs + dx
            inside = (ny >= 0) & (ny < height) & (nx >= 0) & (nx < width)
            if usable is not None:
                inside[inside] = usable[ny[inside], nx[inside]]
            neighbour = np.full(n, n, np.int64)
            neighbour[inside] = index[ny[inside], nx[inside]]
            known = inside & (neighbour < 0)
            neighbour[neighbour < 0] = n
            self.degree += inside
            self.rhs[known] += k[ny[known], nx[known]] - g_here[known]
            self.neighbours.append(neighbour)

    def operator(self):
        """f [n, 3] -> the matrix times f, in torch: its gathers run on every core, about
        three times numpy's speed here (a 159,000-pixel stroke: 2.3 against 7.7 ms a product).
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


def _solve(g: np.ndarray, k: np.ndarray, region: np.ndarray, usable: np.ndarray | None) -> np.ndarray:
    """The correction f [n, 3] for the region's pixels in np.nonzero order; `usable`: pixels that
    count as neighbours (None: all)."""
    problem = _Problem(g, k, region, usable)
    n = len(problem.ys)
    if n <= DIRECT_PIXELS or min(region.shape) < 4:
        return _conjugate_gradients(problem, np.zeros((n, 3), np.float32), COARSE_ITERATIONS)
    coarse_g, coarse_k, coarse_region, coarse_usable = _halve(g, k, region, usable)
    coarse = _solve(coarse_g, coarse_k, coarse_region, coarse_usable)
    start = np.zeros(coarse_region.shape + (3,), np.float32)
    start[coarse_region] = coarse
    guess = start[problem.ys // 2, problem.xs // 2]
    return _conjugate_gradients(problem, guess, FINE_ITERATIONS)


def _halve(g: np.ndarray, k: np.ndarray, region: np.ndarray, usable: np.ndarray | None):
    """The problem at half the size: a 2x2 block is region if any of its pixels is; its generated
    value is the mean of its region pixels, its known value the mean of its (all known) pixels; it
    is usable if any of its pixels is."""
    height, width = region.shape
    ph, pw = height + height % 2, width + width % 2

    def blocks(a):
        padded = np.zeros((ph, pw) + a.shape[2:], np.float32)
        padded[:height, :width] = a
        # Four strided adds: several times faster than a reduction over the reshaped block axes.
        return padded[0::2, 0::2] + padded[1::2, 0::2] + padded[0::2, 1::2] + padded[1::2, 1::2]

    present = np.zeros((height, width), np.float32) + 1.0
    count = blocks(present)
    in_region = blocks(region.astype(np.float32))
    coarse_region = in_region > 0
    weight = region[..., None].astype(np.float32)
    coarse_g = blocks(g * weight) / np.maximum(in_region, 1)[..., None]
    coarse_k = blocks(k * (1.0 - weight)) / np.maximum(count - in_region, 1)[..., None]
    coarse_usable = None if usable is None else blocks(usable.astype(np.float32)) > 0
    return coarse_g, coarse_k, coarse_region, coarse_usable


def _conjugate_gradients(problem: _Problem, f: np.ndarray, iterations: int) -> np.ndarray:
    """A few steps of CG for each colour channel at once (the matrix is the same for all three)."""
    import torch

    apply = problem.operator()
    f = torch.from_numpy(np.ascontiguousarray(f, np.float32))
    residual = torch.from_numpy(problem.rhs) - apply(f)
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
