"""The sampler's cost model (sampling/cost.py): what the time-left estimate rests on."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from fractal_studio.sampling.cost import call_cost, expected_max, pass_seconds


def photo_like():
    """The bundled photo model's shape: 64 -> 16 -> 4 -> pixels, iterations 16, 4, 4."""
    from fractal_studio.model.config import LevelConfig, ModelConfig, SamplingDefaults

    levels = (LevelConfig("mar", 64, 160, 4, 4), LevelConfig("mar", 16, 96, 2, 4),
              LevelConfig("mar", 4, 48, 1, 4), LevelConfig("head", 1, 32, 1, 2))
    return ModelConfig(name="photo-like", levels=levels, num_conds=5, class_num=1,
                       sampling=SamplingDefaults(iterations=(16, 4, 4)))


def window_cost(config, unknown, candidates=1, guided=False):
    return call_cost(config, config.sampling.iterations, 0, unknown[None], candidates, guided)


@pytest.mark.parametrize("values,draws", [([1, 5, 2, 9, 9, 3], 2), ([4, 4, 1], 1), ([1, 2, 3, 4, 5], 3)])
def test_expected_max_is_the_mean_over_every_draw(values, draws):
    brute = np.mean([max(c) for c in itertools.combinations(values, draws)])
    assert expected_max(np.array(values), draws) == pytest.approx(brute)
    assert expected_max(np.array(values), len(values) + 3) == max(values)  # more draws than values


def test_a_window_costs_its_passes_not_its_pixels():
    """The same number of unknown pixels costs far more spread over 8 top patches than packed
    into one (8 top steps, each calling the levels below, instead of 1), and a window whose
    patches are all partly unknown costs about what a full one does (measured: 0.48 against
    0.50 s for 60 against 96 small patches in 8 top patches)."""
    config = photo_like()
    packed = np.zeros((64, 64), bool)
    packed[:8, :8] = True  # 64 pixels in one top patch
    spread = np.zeros((64, 64), bool)
    for k in range(8):
        spread[(k // 4) * 16:(k // 4) * 16 + 2, (k % 4) * 16:(k % 4) * 16 + 4] = True  # 8 pixels in each of 8
    assert spread.sum() == packed.sum()
    assert window_cost(config, spread) > 3 * window_cost(config, packed)
    full_patches = np.zeros((64, 64), bool)
    full_patches[:32, :] = True  # 8 whole top patches
    partial = full_patches.copy()
    partial[::2, ::2] = False  # every small patch still has unknown pixels
    assert window_cost(config, partial) == pytest.approx(window_cost(config, full_patches), rel=0.25)
    assert window_cost(config, np.zeros((64, 64), bool)) == 0.0


def test_a_batch_of_candidates_costs_less_than_running_them_one_by_one():
    config = photo_like()
    full = np.ones((64, 64), bool)
    one, four = window_cost(config, full), window_cost(config, full, candidates=4)
    assert one < four < 2 * one  # what the engine's batching of candidates relies on
    assert window_cost(config, full, guided=True) > one  # guidance doubles every pass's rows


def test_a_pass_costs_more_for_more_rows_and_wider_levels():
    config = photo_like()
    assert pass_seconds(config, 0, 8) > pass_seconds(config, 0, 1) > pass_seconds(config, 2, 1)
    assert pass_seconds(config, 3, 100) > pass_seconds(config, 3, 1)  # the head: its draws per row
