"""Colour matching of a fill at its border (editing/seamless.py) and its use by the editing layer."""

import numpy as np
import pytest

from fractal_studio.editing.engine import EditOptions, EditResult, run_edit
from fractal_studio.editing.seamless import DIRECT_PIXELS, seamless_fill, seamless_fills


def smooth_photo(height: int, width: int) -> np.ndarray:
    """A photo-like image: slow gradients in each channel."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    channels = [60 + 80 * x / width + 30 * y / height,
                120 + 40 * np.sin(y / height * 3.0),
                200 - 90 * (x + y) / (width + height)]
    return np.stack(channels, -1).round().astype(np.uint8)


def dense_solution(generated, known, region):
    """The same least-squares problem written out as a dense matrix and solved directly."""
    height, width = region.shape
    ys, xs = np.nonzero(region)
    index = {(y, x): i for i, (y, x) in enumerate(zip(ys, xs, strict=True))}
    n = len(ys)
    matrix = np.zeros((n, n))
    rhs = np.zeros((n, 3))
    g = generated.astype(np.float64)
    for i, (y, x) in enumerate(zip(ys, xs, strict=True)):
        for dy, dx in ((-1, 0), (1, 0), (0, -1), (0, 1)):
            ny, nx = y + dy, x + dx
            if not (0 <= ny < height and 0 <= nx < width):
                continue
            matrix[i, i] += 1
            if (ny, nx) in index:  # inside: keep the fill's own difference to its neighbour
                matrix[i, index[ny, nx]] -= 1
                rhs[i] += g[y, x] - g[ny, nx]
            else:  # across the border: no jump to the known neighbour
                rhs[i] += known[ny, nx]
    u = np.linalg.solve(matrix, rhs)
    out = known.copy()
    out[ys, xs] = np.clip(np.rint(u), 0, 255).astype(np.uint8)
    return out


def test_matches_a_direct_solve_of_the_poisson_equation():
    rng = np.random.default_rng(0)
    known = rng.integers(0, 256, (14, 18, 3), dtype=np.uint8)
    generated = rng.integers(0, 256, (14, 18, 3), dtype=np.uint8)
    region = np.zeros((14, 18), bool)
    region[3:11, 5:18] = True  # touches the image's right edge: a free border there
    region[6, 2:5] = True
    out = seamless_fill(generated, known, region)
    expected = dense_solution(generated, known, region)
    assert np.abs(out.astype(int) - expected.astype(int)).max() <= 1
    assert np.array_equal(out[~region], known[~region])  # known pixels untouched


@pytest.mark.parametrize("side", [40, 150])  # 150x150 > DIRECT_PIXELS: the coarse-to-fine path
def test_a_fill_with_the_wrong_brightness_is_brought_back(side):
    """A fill that is the true picture plus texture, shifted by a constant, comes back as the true
    picture plus the same texture: the shift is removed, the detail kept."""
    truth = smooth_photo(side + 40, side + 40)
    region = np.zeros(truth.shape[:2], bool)
    region[20:20 + side, 20:20 + side] = True
    assert region.sum() > DIRECT_PIXELS or side < 100
    texture = np.where(np.indices(region.shape).sum(0) % 6 < 3, 6, -6)[..., None]
    generated = np.clip(truth.astype(int) + texture - 35, 0, 255)
    holed = truth.copy()
    holed[region] = 0
    out = seamless_fill(generated, holed, region)
    error = out.astype(int) - (truth.astype(int) + texture)
    assert np.abs(generated - truth - texture)[region].mean() > 30  # it was far off
    assert np.abs(error[region]).mean() < 2.0
    assert np.array_equal(out[~region], holed[~region])


def test_empty_canvas_does_not_pull_the_fill():
    """Outpainting: pixels with no picture yet (black) outside the region pull on nothing."""
    photo = np.full((20, 30, 3), 150, np.uint8)
    photo[:, 20:] = 0  # the new canvas, black
    region = np.zeros((20, 30), bool)
    region[:, 20:25] = True  # only part of the new canvas is generated this time
    empty = np.zeros((20, 30), bool)
    empty[:, 20:] = True
    generated = np.full((20, 30, 3), 130, np.uint8)
    out = seamless_fill(generated, photo, region, empty=empty)
    assert np.abs(out[region].astype(int) - 150).max() <= 1  # pulled to the photo, not to the black
    pulled_down = seamless_fill(generated, photo, region)
    assert pulled_down[:, 24].astype(int).mean() < 140


def test_sizes_must_agree():
    with pytest.raises(ValueError):
        seamless_fill(np.zeros((4, 4, 3)), np.zeros((4, 5, 3)), np.zeros((4, 4), bool))


def edit(model, image, mask, **options) -> EditResult:
    *_, result = run_edit(model, image, mask, EditOptions(iterations=(2, 2), **options))
    return result


def test_editing_layer_matches_colours_and_records_it(toy_model):
    image = smooth_photo(16, 24)
    mask = np.zeros((16, 24), bool)
    mask[4:12, 8:16] = True
    on = edit(toy_model, image, mask, seed=3)
    off = edit(toy_model, image, mask, seed=3, seamless=False)
    assert on.metadata["seamless"] == "on" and off.metadata["seamless"] == "off"
    a, b = on.candidates[0], off.candidates[0]
    assert np.array_equal(a[~mask], image[~mask]) and np.array_equal(b[~mask], image[~mask])
    assert not np.array_equal(a[mask], b[mask])
    # The fill's border now continues the photo: the jump across the mask's edge shrinks.
    def border_jump(result):
        rows = slice(4, 12)
        return (np.abs(result[rows, 8].astype(int) - result[rows, 7]).mean()
                + np.abs(result[rows, 15].astype(int) - result[rows, 16]).mean())
    assert border_jump(a) < border_jump(b)
    # It is the same computation as seamless_fill on the uncorrected result.
    assert np.array_equal(a, seamless_fill(b, image, mask))


def test_several_fills_of_one_region_solve_together_as_each_alone():
    """The candidates of an edit share one solve: each comes out as seamless_fill makes it alone
    (a thin diagonal stroke, larger than DIRECT_PIXELS, so the coarser sizes take part)."""
    truth = smooth_photo(160, 200)
    region = np.zeros(truth.shape[:2], bool)
    for y in range(160):
        region[y, max(0, y + 10):y + 40] = True
    assert region.sum() > DIRECT_PIXELS
    rng = np.random.default_rng(1)
    fills = [np.clip(truth.astype(int) + shift + rng.integers(-8, 9, truth.shape), 0, 255).astype(np.uint8)
             for shift in (-40, 25, 0)]
    holed = truth.copy()
    holed[region] = 0
    together = seamless_fills(fills, holed, region)
    assert len(together) == 3
    for fill, joint in zip(fills, together, strict=True):
        alone = seamless_fill(fill, holed, region)
        assert np.abs(joint.astype(int) - alone).max() <= 1
        assert np.array_equal(joint[~region], holed[~region])
        assert np.abs(joint.astype(int) - truth)[region].mean() < 6  # the shift is gone
    assert seamless_fills([], holed, region) == []
