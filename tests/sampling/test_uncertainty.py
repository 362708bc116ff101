"""The sampler's per-pixel uncertainty: the entropy of what each generated pixel was drawn from."""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
import torch

from fractal_studio.sampling import SampleRequest, sample_all
from fractal_studio.sampling.guidance import sampled_entropy_bits

from ..conftest import random_model

TINY_PRESETS = ("tiny_mar_in16", "tiny_ar_in16", "tiny_mar_guiding_in16")


def hole_request(**options) -> SampleRequest:
    rng = np.random.default_rng(3)
    canvas = rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)
    known = np.ones((16, 16), bool)
    known[3:11, 5:14] = False
    known[14, 0] = False
    return SampleRequest(canvas=canvas, known=known, **options)


def test_entropy_of_uniform_one_hot_and_cut_distributions():
    uniform = torch.zeros(2, 256)
    one_hot = torch.full((1, 256), -1e9)
    one_hot[0, 17] = 0.0
    assert torch.allclose(sampled_entropy_bits(uniform), torch.full((2,), 8.0))
    assert float(sampled_entropy_bits(one_hot)) == 0.0
    # spread keeps the central half of the mass: 128 equally likely values, 7 bits; 0: the median.
    assert math.isclose(float(sampled_entropy_bits(uniform, 0.5)[0]), 7.0, abs_tol=1e-4)
    assert float(sampled_entropy_bits(uniform, 0.0)[0]) == 0.0
    two = torch.full((1, 256), -1e9)
    two[0, [3, 9]] = 0.0
    assert math.isclose(float(sampled_entropy_bits(two)[0]), 1.0, abs_tol=1e-6)


def with_head_logits(model, bias: torch.Tensor):
    """A copy of `model` whose pixel head gives `bias` as every channel's logits, whatever it sees."""
    model = copy.deepcopy(model)
    with torch.no_grad():
        for codebook, logit_bias in zip(model.head.codebooks, model.head.logit_bias, strict=True):
            codebook.weight.zero_()
            logit_bias.copy_(bias)
    return model


@pytest.mark.parametrize("preset", TINY_PRESETS)
def test_known_head_distributions_give_their_bits_at_generated_pixels_only(preset):
    model = random_model(preset)
    request = hole_request(uncertainty=True, candidates=2)
    uniform = sample_all(with_head_logits(model, torch.zeros(1, 256)), request)
    for bits in uniform.uncertainty:
        assert bits.shape == (16, 16) and bits.dtype == np.float32
        assert np.isnan(bits[request.known]).all()
        np.testing.assert_allclose(bits[~request.known], 24.0, atol=1e-4)  # 8 bits for each of R, G, B
    spike = torch.full((1, 256), -1e4)
    spike[0, 200] = 0.0
    certain = sample_all(with_head_logits(model, spike), request)
    for bits, pixels in zip(certain.uncertainty, certain.candidates, strict=True):
        assert (bits[~request.known] == 0.0).all() and np.isnan(bits[request.known]).all()
        assert (pixels[~request.known] == 200).all()


@pytest.mark.parametrize("preset", TINY_PRESETS)
def test_recording_changes_no_pixel_and_costs_nothing_when_off(preset):
    model = random_model(preset, class_num=4)
    options = dict(candidates=2, seed=5, class_id=1, cfg=2.0, temperature=0.9, spread=0.7)
    plain = sample_all(model, hole_request(**options))
    recorded = sample_all(model, hole_request(uncertainty=True, **options))
    assert plain.uncertainty is None
    for a, b in zip(plain.candidates, recorded.candidates, strict=True):
        np.testing.assert_array_equal(a, b)
    known = hole_request().known
    for bits in recorded.uncertainty:
        generated = bits[~known]
        assert np.isfinite(generated).all() and (generated >= 0).all() and (generated <= 24 + 1e-4).all()
        assert generated.std() > 0  # a random model is surer of some pixels than of others


def test_fully_known_canvas_has_an_all_nan_map():
    request = replace_known(hole_request(uncertainty=True), np.ones((16, 16), bool))
    finished = sample_all(random_model("tiny_mar_in16"), request)
    assert np.isnan(finished.uncertainty[0]).all()


def replace_known(request: SampleRequest, known: np.ndarray) -> SampleRequest:
    from dataclasses import replace

    return replace(request, known=known)
