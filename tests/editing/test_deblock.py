"""Softening a fill where it is deeper than the model fills well (editing/deblock.py)."""

from __future__ import annotations

import numpy as np

from fractal_studio.editing.deblock import deep_fill_weight, soften_deep_fill


def blocky_strip() -> tuple[np.ndarray, np.ndarray]:
    """A 40x40 picture whose right 24 columns are unknown and filled with 4x4 blocks of two colours."""
    rng = np.random.default_rng(0)
    pixels = np.full((40, 40, 3), 120, np.uint8)
    blocks = rng.integers(0, 2, (10, 6)).repeat(4, axis=0).repeat(4, axis=1)
    pixels[:, 16:] = np.where(blocks[..., None] == 1, 200, 40).astype(np.uint8)
    unknown = np.zeros((40, 40), bool)
    unknown[:, 16:] = True
    return pixels, unknown


def test_deep_blocks_lose_their_edges_and_the_rest_stays():
    pixels, unknown = blocky_strip()
    soft = soften_deep_fill(pixels, deep_fill_weight(unknown, depth=2.0, patch=4), patch=4)
    assert np.array_equal(soft[~unknown], pixels[~unknown])  # known pixels never change
    assert np.array_equal(soft[:, 16:18], pixels[:, 16:18])  # within the depth the model fills well
    deep = (slice(None), slice(26, 40))  # depth + a patch and more: fully softened
    jumps = lambda a: np.abs(np.diff(a[deep].astype(int), axis=1)).max()  # noqa: E731
    assert jumps(soft) < jumps(pixels) / 2
    assert abs(soft[deep].mean() - pixels[deep].mean()) < 10  # its colours stay, on the whole


def test_nothing_deeper_than_the_depth_is_left_as_it_was():
    pixels, unknown = blocky_strip()
    assert deep_fill_weight(unknown, depth=30.0, patch=4) is None
    assert deep_fill_weight(np.zeros_like(unknown), depth=2.0, patch=4) is None
    assert np.array_equal(soften_deep_fill(pixels, None, patch=4), pixels)
