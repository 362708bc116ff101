"""Compositing as pure functions: only the mask's pixels change, feathered and weighted as asked."""

import numpy as np

from fractal_studio.editing.compositing import blend, match_colours
from fractal_studio.editing.windows import bounding_rect


def scene():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (30, 40, 3), dtype=np.uint8)
    mask = np.zeros((30, 40), bool)
    mask[8:20, 10:28] = True
    mask[8, 10] = False  # a box with a known pixel inside
    return image, mask, bounding_rect(mask)


def test_blend_without_feather_copies_the_fill_inside_the_mask_only():
    image, mask, box = scene()
    generated = np.full((box.height, box.width, 3), 200, np.uint8)
    out = blend(image, mask, box, generated)
    inside = mask[box.slices]
    assert (out[inside] == 200).all()
    assert np.array_equal(out[~inside], image[box.slices][~inside])
    assert out.shape == generated.shape


def test_feather_ramps_at_the_edge_and_weights_mix_with_the_original():
    image, mask, box = scene()
    generated = np.full((box.height, box.width, 3), 255, np.uint8)
    image[:] = 0
    feathered = blend(image, mask, box, generated, feather=3)
    inside = mask[box.slices]
    assert feathered[inside].min() < 255 and feathered[inside].max() == 255  # a ramp, then the fill
    assert (feathered[~inside] == 0).all()
    weights = np.full(mask.shape, 128, np.uint8)
    half = blend(image, mask, box, generated, weights=weights)
    assert (half[inside] == 128).all()
    blank = np.zeros(mask.shape, bool)
    blank[box.slices] = True  # no picture under the box: nothing to mix with
    assert (blend(image, mask, box, generated, weights=weights, blank=blank)[inside] == 255).all()


def test_match_colours_moves_a_fill_towards_its_surroundings_and_keeps_known_pixels():
    image, mask, box = scene()
    image[:] = 100
    fills = [np.full((box.height, box.width, 3), value, np.uint8) for value in (180, 20)]
    matched = match_colours(image, mask, box, fills)
    inside = mask[box.slices]
    assert len(matched) == 2
    for fill, original in zip(matched, fills, strict=True):
        assert abs(int(fill[inside].mean()) - 100) < abs(int(original[inside].mean()) - 100)
        assert np.array_equal(fill[~inside], image[box.slices][~inside])  # the known pixel in the box
