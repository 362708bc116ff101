"""The records the sampler's levels pass: a call rejects a malformed field, and a step is placed on the
canvas through every level above it."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fractal_studio.model.layers import patchify
from fractal_studio.sampling.levels import LevelCall, LevelStep, Placement


def call(**changes) -> LevelCall:
    fields = dict(index=0, conds=(torch.zeros(2, 8),), pixels=torch.zeros(2, 3, 4, 4),
                  known=torch.zeros(2, 4, 4, dtype=torch.bool), cfg=1.0, schedule="constant", span=(0.0, 1.0))
    return LevelCall(**{**fields, **changes})


def test_a_call_whose_known_map_does_not_match_its_pixels_is_refused():
    with pytest.raises(ValueError, match=r"known \(2, 4, 3\) does not match pixels \(2, 3, 4, 4\)"):
        call(known=torch.zeros(2, 4, 3, dtype=torch.bool))
    with pytest.raises(ValueError, match="does not match"):
        call(known=torch.zeros(1, 4, 4, dtype=torch.bool))


def test_a_call_with_an_unknown_guidance_schedule_is_refused():
    with pytest.raises(ValueError, match="schedule must be one of"):
        call(schedule="cosine")


def test_a_call_is_frozen():
    with pytest.raises(AttributeError):
        call().cfg = 2.0


def test_a_step_two_levels_down_is_placed_through_both_parents_without_changing_them():
    canvas = torch.arange(48, dtype=torch.float32).view(1, 3, 4, 4)
    top_patches = patchify(canvas, 2)  # [1, 4, 12]
    bottom_right = Placement(top_patches, torch.tensor([0]), torch.tensor([3]), patch=2, side=4)
    # The middle level has already changed its image (all -1) since the top level cut it out.
    middle_patches = patchify(torch.full((1, 3, 2, 2), -1.0), 1)  # [1, 4, 3]
    its_top_left = Placement(middle_patches, torch.tensor([0]), torch.tensor([0]), patch=1, side=2)
    step = LevelStep(level=2, step=1, steps=1, images=torch.full((1, 3, 1, 1), 100.0), fraction=0.5,
                     placements=(bottom_right, its_top_left))
    expected = canvas.clone()
    expected[..., 2:, 2:] = -1.0
    expected[..., 2, 2] = 100.0
    assert torch.equal(step.on_canvas(), expected)
    assert torch.equal(top_patches, patchify(canvas, 2))
    assert torch.equal(middle_patches, torch.full((1, 4, 3), -1.0))


def test_a_child_call_crops_its_patches_and_extends_the_placements():
    pixels = torch.arange(2 * 3 * 4 * 4, dtype=torch.float32).view(2, 3, 4, 4)
    known = torch.zeros(2, 4, 4, dtype=torch.bool)
    known[1, 2, 0] = True
    parent = call(pixels=pixels, known=known, cfg=3.0, schedule="linear", span=(0.5, 1.0))
    placement = Placement(patchify(pixels, 2), torch.tensor([1]), torch.tensor([2]), patch=2, side=4)
    child = parent.child(placement, patchify(known.unsqueeze(1), 2), (torch.ones(1, 8),), 2.0, (0.5, 0.75))
    assert child.index == 1 and child.cfg == 2.0 and child.schedule == "constant"
    assert torch.equal(child.pixels, pixels[1:, :, 2:, :2])
    assert torch.equal(child.known, known[1:, 2:, :2])
    assert child.placements == (placement,)
    assert parent.step_span(1, 2) == (0.75, 1.0)


def test_progress_follows_the_expected_time_of_each_step_not_its_patches():
    """The cosine schedule predicts few patches first and many last, but a step costs about the
    same either way (one pass of the level, one call of the level below, whatever its batch): the
    progress after each top step is its share of the cost model's time (sampling/cost.py)."""
    from fractal_studio.sampling import Progress, SampleRequest, sample
    from fractal_studio.sampling.cost import call_cost, pass_seconds
    from fractal_studio.sampling.sampler import mar_schedule, unknown_first_order

    from ..conftest import random_model

    model = random_model("tiny_mar_in16")
    config = model.config
    request = SampleRequest.generate(16, iterations=(6, 2), seed=3)
    top = [e for e in sample(model, request) if isinstance(e, Progress) and e.level == 0]
    side = 16 // config.patch_sizes[0]
    unknown = torch.ones(1, side * side, dtype=torch.bool)
    schedule = mar_schedule(unknown_first_order(unknown, torch.Generator().manual_seed(0)),
                            unknown.sum(1), 6)
    predicted = [int(chosen.sum()) for _, chosen, _ in schedule]
    assert sum(predicted) == side * side and predicted[0] < predicted[-1]  # the schedule is uneven...
    patch = config.patch_sizes[0]
    costs = [pass_seconds(config, 0, 1)
             + call_cost(config, (6, 2), 1, np.ones((n, patch, patch), bool), n, False) for n in predicted]
    assert max(costs) < 1.5 * min(costs)  # ...its steps' costs much less so
    assert len(top) == 6
    assert np.allclose([e.fraction for e in top], np.cumsum(costs) / sum(costs))  # progress follows them

