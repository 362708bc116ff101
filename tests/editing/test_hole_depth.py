"""The `auto` work scale and the model's hole depth: a weak model fills well only near known pixels,
so `auto` downscales until no hole is deeper than the model says it fills well."""

from __future__ import annotations

import dataclasses
import math

import cv2
import numpy as np
import pytest

from fractal_studio.editing.engine import EditOptions, plan_edit, run_edit
from fractal_studio.editing.planning import deepest_hole
from fractal_studio.model.config import ModelConfig, preset

from ..conftest import random_model


def stroke(shape, width: int, points=((40, 200), (300, 150), (560, 260))) -> np.ndarray:
    mask = np.zeros(shape, np.uint8)
    cv2.polylines(mask, [np.array(points, np.int32)], False, 1, thickness=width)
    return mask.astype(bool)


def test_a_stroke_is_half_its_width_deep():
    for width in (5, 21, 41):
        mask = stroke((400, 600), width, points=((40, 200), (560, 260)))
        assert deepest_hole(mask) == pytest.approx(width / 2, abs=1.5)


def test_a_box_is_half_its_short_side_deep_and_a_border_strip_its_whole_width():
    box = np.zeros((400, 600), bool)
    box[100:140, 100:300] = True
    assert deepest_hole(box) == pytest.approx(20, abs=1)
    strip = np.zeros((400, 600), bool)
    strip[:, 536:] = True  # dragged out on the right: known pixels on one side only
    assert deepest_hole(strip) == pytest.approx(64, abs=1)


def test_nothing_unknown_is_no_hole_and_nothing_known_is_infinitely_deep():
    assert deepest_hole(np.zeros((30, 40), bool)) == 0
    assert math.isinf(deepest_hole(np.ones((30, 40), bool)))


def test_a_huge_box_is_measured_reduced_but_close():
    mask = stroke((2848, 4272), 40, points=((100, 100), (4000, 2700)))
    assert deepest_hole(mask) == pytest.approx(20, abs=3)


SHORT = ((250, 200), (350, 200))


def test_auto_downscales_a_deep_stroke_to_the_models_hole_depth():
    mask = stroke((400, 600), 24, points=SHORT)  # 12 pixels deep
    plain = plan_edit(mask.shape, mask, 64, EditOptions())
    assert plain.scale == 1  # a few windows are enough: without a hole depth `auto` stays native
    shallow = plan_edit(mask.shape, mask, 64, EditOptions(), hole_depth=2.0)
    assert shallow.scale >= 12 / 2
    # Never further than the whole photo in one window.
    deepest = plan_edit(mask.shape, mask, 64, EditOptions(), hole_depth=0.01)
    assert deepest.scale == pytest.approx(600 / 64) and len(deepest.windows) == 1
    # An explicit work scale is obeyed whatever the model says.
    assert plan_edit(mask.shape, mask, 64, EditOptions(work_scale="native"), hole_depth=2.0).scale == 1


def test_a_shallow_hole_stays_native():
    mask = stroke((400, 600), 3, points=SHORT)
    assert plan_edit(mask.shape, mask, 64, EditOptions(), hole_depth=4.0).scale == 1


def test_run_edit_takes_the_hole_depth_from_the_model():
    model = random_model("tiny_mar_in16")
    image = np.random.default_rng(0).integers(0, 256, (120, 160, 3), dtype=np.uint8)
    mask = stroke((120, 160), 9, points=((20, 60), (140, 60)))
    *_, plain = run_edit(model, image, mask, EditOptions(work_scale="auto"))
    sampling = dataclasses.replace(model.config.sampling, hole_depth=1.5)
    model.config = dataclasses.replace(model.config, sampling=sampling)
    *_, shallow = run_edit(model, image, mask, EditOptions(work_scale="auto"))
    assert shallow.plan.scale >= 4.5 / 1.5 > plain.plan.scale
    candidate = shallow.candidates[0]
    assert np.array_equal(candidate[~mask], image[~mask])  # outside the hole nothing changes
    assert not np.array_equal(candidate[mask], image[mask])


def test_hole_depth_is_validated_and_survives_the_file_format():
    config = preset("tiny_mar_in16")
    with_depth = dataclasses.replace(config, sampling=dataclasses.replace(config.sampling, hole_depth=2.5))
    assert ModelConfig.from_json(with_depth.to_json()).sampling.hole_depth == 2.5
    for bad in (0.0, -1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="hole_depth"):
            dataclasses.replace(config, sampling=dataclasses.replace(config.sampling, hole_depth=bad))
    # Files written before the field existed have no limit.
    data = config.to_json().replace('"hole_depth": null, ', "")
    assert "hole_depth" not in data
    assert ModelConfig.from_json(data).sampling.hole_depth is None
