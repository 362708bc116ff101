"""Uncertainty of a fill through the editing engine (editing/uncertainty.py): bits per pixel at the
image's size, the finest scale's where a coarse-to-fine fill drew a pixel more than once, and the
unsure patches chosen for a re-roll."""

from __future__ import annotations

import copy
import dataclasses

import numpy as np
import torch

from fractal_studio.editing.engine import EditOptions, run_edit
from fractal_studio.editing.uncertainty import (
    finest_drawn,
    full_map,
    heat_image,
    patch_scores,
    unsure_mask,
    working_to_image,
)
from fractal_studio.geometry import Rect

from ..conftest import random_model


def uniform_head(model):
    """A copy of `model` whose pixel head draws every value of every channel alike (24 bits a pixel)."""
    model = copy.deepcopy(model)
    with torch.no_grad():
        for codebook, bias in zip(model.head.codebooks, model.head.logit_bias, strict=True):
            codebook.weight.zero_()
            bias.zero_()
    return model


def hole(shape, top, left, height, width) -> np.ndarray:
    mask = np.zeros(shape, bool)
    mask[top:top + height, left:left + width] = True
    return mask


def photo(shape) -> np.ndarray:
    return np.random.default_rng(1).integers(0, 256, (*shape, 3), dtype=np.uint8)


def test_a_native_edit_hands_over_bits_exactly_at_the_masks_pixels_and_changes_no_pixel():
    model = random_model("tiny_mar_in16")
    image, mask = photo((24, 30)), hole((24, 30), 5, 7, 9, 11)
    mask[20, 2] = True
    options = EditOptions(seed=2, candidates=2, work_scale="native")
    *_, plain = run_edit(model, image, mask, options)
    *_, recorded = run_edit(model, image, mask, options, uncertainty=True)
    assert plain.uncertainty is None
    box = recorded.candidates.box
    inside = mask[box.slices]
    for k, bits in enumerate(recorded.uncertainty):
        assert bits.shape == (box.height, box.width)
        assert np.isfinite(bits[inside]).all() and np.isnan(bits[~inside]).all()
        assert (bits[inside] >= 0).all() and (bits[inside] <= 24 + 1e-4).all()
        np.testing.assert_array_equal(recorded.candidates[k], plain.candidates[k])


def test_a_downscaled_edit_gives_every_image_pixel_of_the_mask_its_working_pixels_bits():
    model = uniform_head(random_model("tiny_mar_in16"))
    image, mask = photo((60, 72)), hole((60, 72), 10, 12, 30, 40)
    *_, result = run_edit(model, image, mask, EditOptions(seed=1, work_scale="2"), uncertainty=True)
    bits = full_map(result.uncertainty[0], result.candidates.box, mask.shape)
    assert bits.shape == mask.shape
    np.testing.assert_allclose(bits[mask], 24.0, atol=1e-4)
    assert np.isnan(bits[~mask]).all()


def test_coarse_to_fine_keeps_the_bits_of_the_finest_scale_that_drew_each_pixel():
    model = uniform_head(random_model("tiny_mar_in16"))
    # The finer scales draw from the central half of each distribution (7 bits a channel), the
    # coarse scale from all of it (8): pixels only the coarse scale drew keep 24 bits.
    sampling = dataclasses.replace(model.config.sampling, spread=1.0, hole_depth=1.0, detail_spread=0.5,
                                   detail_iterations=(2, 2))
    model.config = dataclasses.replace(model.config, sampling=sampling)
    image = photo((120, 160))
    mask = hole((120, 160), 50, 10, 12, 140)
    *_, result = run_edit(model, image, mask, EditOptions(seed=3), uncertainty=True)
    assert result.metadata["detail"] == "on"
    bits = full_map(result.uncertainty[0], result.candidates.box, mask.shape)
    values = np.unique(np.round(bits[mask], 3))
    assert set(values) == {21.0, 24.0}
    assert (bits[mask] == 21.0).mean() > 0.5  # most pixels are the finer scales' own
    assert np.isnan(bits[~mask]).all()


def test_the_maps_helpers():
    bits = np.array([[1.0, 2.0], [3.0, np.nan]], np.float32)
    # Each image pixel takes the working pixel its centre lies in (two image pixels per working one).
    scaled = working_to_image(bits, (0, 0), (2.0, 2.0), Rect(1, 0, 3, 4))
    np.testing.assert_array_equal(scaled[:2], [[1, 2, 2], [1, 2, 2]])
    assert np.isnan(scaled[2:, 1:]).all() and (scaled[2:, 0] == 3).all()
    np.testing.assert_array_equal(finest_drawn(np.array([np.nan, 5.0]), np.array([1.0, 2.0])), [1.0, 5.0])
    assert heat_image(np.array([[np.nan, 12.0, 30.0]]), 24.0).tolist() == [[0, 128, 255]]
    scores = patch_scores(np.array([[1.0, 3.0, np.nan], [np.nan, np.nan, np.nan]], np.float32), 2)
    assert scores[0, 0] == 2.0 and np.isnan(scores[0, 1])


def test_the_unsure_patches_are_those_above_the_threshold_inside_the_mask():
    mask = hole((8, 8), 0, 0, 8, 6)
    bits = np.where(mask, 1.0, np.nan).astype(np.float32)
    bits[0:2, 2:4] = 20.0  # one unsure 2x2 patch
    bits[5, 5] = 30.0  # one unsure pixel: its patch's mean is (30 + 3) / 4 > 1
    chosen = unsure_mask(bits, mask, 2, threshold=5.0)
    expected = np.zeros((8, 8), bool)
    expected[0:2, 2:4] = True
    expected[4:6, 4:6] = True
    np.testing.assert_array_equal(chosen, expected & mask)
    by_quantile = unsure_mask(bits, mask, 2, quantile=0.95)  # 12 patches: above 13.5 bits, the top one
    np.testing.assert_array_equal(by_quantile, np.pad(np.ones((2, 2), bool), ((0, 6), (2, 4))))


# ------------------------------------------------------------------------------ re-roll (session)
def reroll_session(tmp_path):
    from PIL import Image

    from fractal_studio.editing.session import EditSession, LoadedModel

    model = random_model("tiny_mar_in16")
    path = tmp_path / "photo.png"
    Image.fromarray(photo((20, 24))).save(path)
    session = EditSession()
    session.open(path)
    session.loaded = LoadedModel(path="tiny", model=model, sha256="0" * 64, device=torch.device("cpu"))
    session.set_mask(hole((20, 24), 2, 3, 14, 16))
    return session


def run_to_end(session, run):
    for _ in run.events():
        pass
    return session.finish_run(run)


def test_re_rolling_draws_only_the_unsure_patches_again_and_undo_takes_the_new_candidate_away(tmp_path):
    session = reroll_session(tmp_path)
    assert run_to_end(session, session.start_run(EditOptions(seed=4, candidates=2, work_scale="native")))
    first = [candidate.copy() for candidate in session.candidates]
    result = session.run.result
    bits = full_map(result.uncertainty[1], result.candidates.box, first[1].shape[:2])
    run = session.reroll_unsure(1, quantile=0.75)
    chosen = run.mask
    assert chosen.any() and not (chosen & ~session.doc.mask).any()
    assert run_to_end(session, run)
    assert len(session.candidates) == 3
    rerolled = session.candidates[2]
    np.testing.assert_array_equal(rerolled[~chosen], first[1][~chosen])  # the rest bit for bit
    assert (rerolled[chosen] != first[1][chosen]).any()
    for k in (0, 1):
        np.testing.assert_array_equal(session.candidates[k], first[k])
    new_bits = full_map(session.run.result.uncertainty[2], result.candidates.box, chosen.shape)
    np.testing.assert_array_equal(new_bits[~chosen], bits[~chosen])
    assert np.isfinite(new_bits[chosen]).all()
    # The chosen patches are the candidate's least sure: their mean bits beat the rest's.
    inside = session.doc.mask & ~chosen
    assert bits[chosen].mean() > bits[inside].mean()
    assert session.undo() and len(session.candidates) == 2
    np.testing.assert_array_equal(session.candidates[1], first[1])


def test_re_rolling_explains_what_it_needs(tmp_path):
    import pytest

    from fractal_studio.errors import UserError

    session = reroll_session(tmp_path)
    with pytest.raises(UserError, match="finished run"):
        session.reroll_unsure(0)
    run_to_end(session, session.start_run(EditOptions(seed=4, work_scale="native")))
    with pytest.raises(UserError, match="no candidate #3"):
        session.reroll_unsure(2)
    with pytest.raises(UserError, match="above the uncertainty threshold"):
        session.reroll_unsure(0, threshold=1e9)
