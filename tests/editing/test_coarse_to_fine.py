"""Coarse to fine (editing/engine.py `_coarse_to_fine`, planning.detail_plans): a downscaled fill
guides fills at finer scales, every second pixel each way known from the last scale's fill."""

from __future__ import annotations

import dataclasses

import cv2
import numpy as np
import pytest

from fractal_studio.editing.engine import EditOptions, Vary, _check_inputs, _Edit, plan_edit, run_edit
from fractal_studio.editing.planning import DETAIL_WINDOW_BUDGET, EditPlan, detail_plans
from fractal_studio.editing.windows import working_unknown
from fractal_studio.errors import UserError
from fractal_studio.model.config import ModelConfig, preset
from fractal_studio.sampling import SampleRequest, sample_all

from ..conftest import random_model


def stroke(shape, width: int, points=((20, 60), (140, 60))) -> np.ndarray:
    mask = np.zeros(shape, np.uint8)
    cv2.polylines(mask, [np.array(points, np.int32)], False, 1, thickness=width)
    return mask.astype(bool)


def detail_model(detail_spread: float | None = 0.5):
    """A tiny random MAR model that fills well only near known pixels and fills coarse to fine."""
    model = random_model("tiny_mar_in16")
    sampling = dataclasses.replace(model.config.sampling, hole_depth=1.0, detail_spread=detail_spread,
                                   detail_iterations=(2, 2) if detail_spread is not None else None)
    model.config = dataclasses.replace(model.config, sampling=sampling)
    return model


def photo(shape=(120, 160)) -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (*shape, 3), dtype=np.uint8)


def stage(model, image, mask, options: EditOptions, **kwargs) -> _Edit:
    """One scale of an edit, as _coarse_to_fine runs it (kwargs: _Edit's guides, lock, samples...)."""
    settings = _check_inputs(model, image, mask, options, None)
    plan = plan_edit(image.shape, mask, model.config.resolution, options, patches=model.config.patch_sizes)
    return _Edit(model, image, mask, options, settings, plan, None, None, None, **kwargs)


def test_the_finer_scales_are_powers_of_two_down_to_native_pixels():
    mask = stroke((400, 600), 3)
    coarse = EditPlan(scale=10.0, windows=[], working_size=(60, 40))
    scales = [p.scale for p in detail_plans(mask.shape, mask, 64, coarse, EditOptions())]
    assert scales == [4.0, 2.0, 1.0]  # the first at least 1.5 times finer than the coarse scale
    for scale, expected in ((2.5, [1.0]), (3.0, [2.0, 1.0]), (1.25, []), (1.0, [])):
        coarse = EditPlan(scale=scale, windows=[], working_size=(1, 1))
        assert [p.scale for p in detail_plans(mask.shape, mask, 64, coarse, EditOptions())] == expected


def test_the_window_budget_stops_the_finer_scales_before_native_on_a_long_stroke():
    mask = stroke((3000, 4000), 60, points=((200, 1500), (3800, 1500)))
    coarse = plan_edit(mask.shape, mask, 64, EditOptions(), hole_depth=1.0)
    plans = detail_plans(mask.shape, mask, 64, coarse, EditOptions())
    assert plans and plans[-1].scale > 1.0  # native would need far more windows than the budget
    assert sum(len(p.windows) for p in plans) <= DETAIL_WINDOW_BUDGET
    more = detail_plans(mask.shape, mask, 64, coarse, EditOptions(candidates=4))
    assert len(more) <= len(plans)  # candidates cost too


def test_an_edit_fills_coarse_to_fine_and_keeps_every_pixel_outside_the_mask():
    model = detail_model()
    image, mask = photo(), stroke((120, 160), 9)
    *events, result = run_edit(model, image, mask, EditOptions(seed=3))
    meta = result.metadata
    assert meta["detail"] == "on" and meta["detail_spread"] == "0.5"
    assert meta["detail_lock"] == "off" and meta["layout_samples"] == "1"  # the model's (none set)
    assert meta["guide_classical"] == "off"
    # The rest of the record is the coarse scale's, so that a rerun from it makes the same layout.
    assert meta["spread"] == f"{model.config.sampling.spread:g}" and meta["iterations"] == "16,4"
    assert meta["seed"] == "3" and meta["work_scale_option"] == "auto"
    finest = meta["detail_scales"].split(",")[-1]
    assert float(meta["work_scale"]) >= 4 and (finest == "native" or float(finest) <= 2)
    candidate = result.candidates[0]
    assert np.array_equal(candidate[~mask], image[~mask])
    fractions = [e.fraction for e in events]
    assert fractions == sorted(fractions) and 0.5 < fractions[-1] <= 1.0  # one bar over all scales
    *_, again = run_edit(model, image, mask, EditOptions(seed=3))
    assert np.array_equal(again.candidates[0], candidate)  # reproducible
    *_, coarse_only = run_edit(model, image, mask, EditOptions(seed=3, detail=False))
    assert coarse_only.metadata["detail"] == "off"
    assert not np.array_equal(coarse_only.candidates[0], candidate)


def test_a_model_without_detail_settings_and_explicit_work_scales_fill_at_one_scale():
    image, mask = photo(), stroke((120, 160), 9)
    *_, result = run_edit(detail_model(None), image, mask, EditOptions())
    assert result.metadata["detail"] == "off" and not result.layouts
    *_, native = run_edit(detail_model(), image, mask, EditOptions(work_scale="native"))
    assert native.metadata["detail"] == "off"


def test_guide_pixels_are_kept_exactly_and_the_rest_of_the_hole_is_drawn():
    model = detail_model()
    image, mask = photo(), stroke((120, 160), 9)
    guide = np.full_like(image, 77)
    options = EditOptions(work_scale="native", seamless=False, seed=1)
    edit = stage(model, image, mask, options, guides=[guide], guide_stride=2)
    *_, result = edit.events()
    filled = result.candidates[0]
    ys, xs = np.nonzero(mask)
    on_lattice = (ys % 2 == 0) & (xs % 2 == 0)
    assert (filled[ys[on_lattice], xs[on_lattice]] == 77).all()
    assert (filled[ys[~on_lattice], xs[~on_lattice]] != 77).any(axis=-1).mean() > 0.5


def test_a_scales_guides_for_the_next_are_its_composite_downscaled_without_image_sized_work():
    """guides() makes the next scale's guide at that scale (upscaled, colour matched there): the
    downscaled image outside the hole, near what compositing at the image's size and downscaling
    gives inside it."""
    model = detail_model()
    image = cv2.GaussianBlur(photo(), (0, 0), 3)  # smooth: the two routes differ only in rounding
    mask = stroke((120, 160), 9)
    options = EditOptions(work_scale=8, seed=2, candidates=2)
    settings = _check_inputs(model, image, mask, options, None)
    plan = plan_edit(image.shape, mask, model.config.resolution, options, patches=model.config.patch_sizes)
    edit = _Edit(model, image, mask, options, settings, plan, None, None, None, compose=False)
    *_, result = edit.events()
    assert len(result.candidates) == 0  # nothing composited at the image's size
    size = (40, 30)  # the next scale, 4 image pixels per model pixel
    guides = edit.guides(size)
    composited = _Edit(model, image, mask, options, settings, plan, None, None, None)
    *_, full = composited.events()
    hole = working_unknown(mask, size)  # a model pixel with any masked image pixel
    outside = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
    # Inside (the hole's pixels with no known image pixel): the same fill by either route, far
    # nearer to each other than the two candidates are.
    inside = working_unknown(cv2.erode(mask.astype(np.uint8), np.ones((9, 9), np.uint8)).astype(bool), size)
    downscaled = [cv2.resize(c, size, interpolation=cv2.INTER_AREA).astype(int) for c in full.candidates]
    assert len(guides) == 2 and inside.sum() > 20
    for k, guide in enumerate(guides):
        assert guide.shape == (30, 40, 3)
        assert np.array_equal(guide[~hole], outside[~hole])
        same = np.abs(guide[inside] - downscaled[k][inside]).mean()
        other = np.abs(guide[inside] - downscaled[1 - k][inside]).mean()
        assert same < 0.5 * other


def test_a_classical_share_of_the_guides_mixes_in_a_continuation_of_the_known_pixels():
    """guide_classical: inside the hole each guide is that share of a Navier-Stokes continuation
    and the rest the model's fill (rounded); outside it, the downscaled image as before."""
    model = detail_model()
    image = cv2.GaussianBlur(photo(), (0, 0), 3)
    mask = stroke((120, 160), 9)
    options = EditOptions(work_scale=8, seed=2, candidates=2)
    size = (40, 30)
    alone = stage(model, image, mask, options, compose=False)
    *_, _ = alone.events()
    mixed = stage(model, image, mask, options, compose=False, classical=0.4)
    *_, _ = mixed.events()
    model_guides, mixed_guides = alone.guides(size), mixed.guides(size)
    hole = working_unknown(mask, size)
    known = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
    holed = known.copy()
    holed[hole] = 0
    continued = cv2.inpaint(holed, hole.astype(np.uint8), 3.0, cv2.INPAINT_NS).astype(float)
    for fill, guide in zip(model_guides, mixed_guides, strict=True):
        assert np.array_equal(guide[~hole], known[~hole])
        expected = 0.6 * fill[hole].astype(float) + 0.4 * continued[hole]
        assert np.abs(guide[hole] - expected).max() <= 1.0  # rounding, and the context's edge
        assert np.abs(guide[hole].astype(float) - fill[hole]).mean() > 2.0  # it did change
    # The same share in a whole run: the record says so, and the fill differs from the model's alone.
    share = dataclasses.replace(model.config.sampling, guide_classical=0.4)
    shared = detail_model()
    shared.config = dataclasses.replace(shared.config, sampling=share)
    *_, with_share = run_edit(shared, image, mask, EditOptions(seed=3))
    *_, without = run_edit(model, image, mask, EditOptions(seed=3))
    assert with_share.metadata["guide_classical"] == "0.4"
    assert not np.array_equal(with_share.candidates[0], without.candidates[0])
    assert np.array_equal(with_share.candidates[0][~mask], image[~mask])


def test_candidates_with_their_own_canvases_keep_their_own_known_pixels_in_one_batch():
    model = random_model("tiny_mar_in16")
    rng = np.random.default_rng(2)
    canvases = rng.integers(0, 256, (3, 16, 16, 3), dtype=np.uint8)
    known = rng.random((16, 16)) < 0.5
    out = sample_all(model, SampleRequest(canvas=canvases, known=known, candidates=3, seed=4)).candidates
    for k in range(3):
        assert np.array_equal(out[k][known], canvases[k][known])
    with pytest.raises(UserError, match="canvas"):
        sample_all(model, SampleRequest(canvas=canvases, known=known, candidates=2))


def test_several_candidates_are_ranked_at_the_coarse_scale_and_vary_detail_keeps_their_layout():
    model = detail_model()
    image, mask = photo(), stroke((120, 160), 9)
    options = EditOptions(seed=5, candidates=3)
    *_, result = run_edit(model, image, mask, options)
    assert len(result.candidates) == 3 and len(result.layouts) == 3
    assert result.bits is not None and list(result.bits) == sorted(result.bits)
    *_, varied = run_edit(model, image, mask, options, vary=Vary(result, detail_seed=9))
    for k in range(3):
        assert np.array_equal(varied.layouts[k], result.layouts[k])  # the layout is the same
        assert not np.array_equal(varied.candidates[k], result.candidates[k])  # the detail is new
        assert np.array_equal(varied.candidates[k][~mask], image[~mask])
    assert varied.made_as == result.made_as


def test_the_detail_spread_is_checked_and_the_settings_survive_the_file_format():
    image, mask = photo(), stroke((120, 160), 9)
    for bad in (-0.1, 1.5, float("nan")):
        with pytest.raises(UserError, match="detail spread"):
            run_edit(detail_model(), image, mask, EditOptions(detail_spread=bad))
    config = preset("tiny_mar_in16")
    sampling = dataclasses.replace(config.sampling, detail_spread=0.3, detail_iterations=(4, 2))
    loaded = ModelConfig.from_json(dataclasses.replace(config, sampling=sampling).to_json()).sampling
    assert loaded.detail_spread == 0.3 and loaded.detail_iterations == (4, 2)
    with pytest.raises(ValueError, match="detail_iterations"):
        dataclasses.replace(config, sampling=dataclasses.replace(sampling, detail_iterations=(4,)))
    with pytest.raises(ValueError, match="detail_spread"):
        dataclasses.replace(config, sampling=dataclasses.replace(sampling, detail_spread=2.0))
    sampling = dataclasses.replace(sampling, detail_lock=1.5, layout_samples=4)
    loaded = ModelConfig.from_json(dataclasses.replace(config, sampling=sampling).to_json()).sampling
    assert loaded.detail_lock == 1.5 and loaded.layout_samples == 4
    sampling = dataclasses.replace(sampling, guide_classical=0.4)
    loaded = ModelConfig.from_json(dataclasses.replace(config, sampling=sampling).to_json()).sampling
    assert loaded.guide_classical == 0.4
    for bad in ({"detail_lock": 0.0}, {"detail_lock": float("nan")}, {"layout_samples": 0},
                {"layout_samples": 2.5}, {"layout_samples": 1000}, {"guide_classical": 0.0},
                {"guide_classical": 1.5}, {"guide_classical": float("inf")}):
        with pytest.raises(ValueError, match=next(iter(bad))):
            dataclasses.replace(config, sampling=dataclasses.replace(sampling, **bad))


def test_a_layout_of_several_samples_is_their_mean():
    """samples=3: the candidate's fill is the mean of the three fills the sampler draws together."""
    model = random_model("tiny_mar_in16")
    image = photo((16, 16))
    mask = np.zeros((16, 16), bool)
    mask[4:12, 3:13] = True
    options = EditOptions(work_scale="native", seamless=False, seed=4, iterations=(2, 2))
    settings = _check_inputs(model, image, mask, options, None)
    plan = plan_edit(image.shape, mask, model.config.resolution, options, patches=model.config.patch_sizes)
    assert len(plan.windows) == 1
    edit = _Edit(model, image, mask, options, settings, plan, None, None, None, samples=3)
    *_, result = edit.events()
    assert len(result.candidates) == 1
    # The same sampler run as three candidates of one window (one batch, the same seed).
    three = dataclasses.replace(options, candidates=3)
    settings = _check_inputs(model, image, mask, three, None)
    *_, separate = _Edit(model, image, mask, three, settings, plan, None, None, None).events()
    direct = list(separate.candidates)
    mean = np.rint(np.mean(np.stack(direct).astype(np.float32), 0)).astype(np.uint8)
    assert np.array_equal(result.candidates[0][mask], mean[mask])
    assert not np.array_equal(mean[mask], direct[0][mask])


def test_the_lock_keeps_the_guides_shade_and_the_detail():
    """With a lock, the hole's smoothed colour follows the guide (a flat 77); the pixel-to-pixel
    detail the model drew stays."""
    model = detail_model()
    image, mask = photo(), stroke((120, 160), 9)
    guide = np.full_like(image, 77)
    options = EditOptions(work_scale="native", seamless=False, seed=1)
    fills = {}
    for lock in (None, 2.0):
        edit = stage(model, image, mask, options, guides=[guide], lock=lock)
        *_, result = edit.events()
        fills[lock] = result.candidates[0].astype(np.float32)
    inner = cv2.erode(mask.astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)

    def shade_error(fill):
        return np.abs(cv2.GaussianBlur(fill, (0, 0), 3) - 77)[inner].mean()

    def detail(fill):
        return np.abs(fill - cv2.GaussianBlur(fill, (0, 0), 1))[inner].mean()

    assert shade_error(fills[2.0]) < 0.5 * shade_error(fills[None])
    assert detail(fills[2.0]) > 0.5 * detail(fills[None]) > 0


@pytest.mark.parametrize("after", [1, 40])
def test_cancel_at_any_scale_ends_the_run_with_nothing_changed_outside_the_mask(after):
    model = detail_model()
    image, mask = photo(), stroke((120, 160), 9)
    calls = []

    def cancel():
        calls.append(1)
        return len(calls) > after

    *events, result = run_edit(model, image, mask, EditOptions(seed=2, candidates=2), cancel=cancel)
    assert result.cancelled
    for candidate in result.candidates:
        assert np.array_equal(candidate[~mask], image[~mask])


def test_new_canvas_is_filled_at_the_coarse_scale_only():
    model = detail_model()
    image = photo()
    mask = np.zeros((120, 160), bool)
    mask[:, 130:] = True  # a strip dragged out on the right: no picture there yet
    *_, result = run_edit(model, image, mask, EditOptions(), blank=mask)
    assert result.metadata["detail"] == "off" and float(result.metadata["work_scale"]) > 1
