"""Vary detail: the top level's outputs of an earlier run kept, the levels below drawn anew."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from fractal_studio.errors import UserError
from fractal_studio.sampling import SampleRequest, sample_all
from fractal_studio.sampling import sampler as sampler_module

from ..conftest import random_model


def edit_request(candidates: int = 2) -> SampleRequest:
    canvas = np.random.default_rng(1).integers(0, 256, (16, 16, 3), dtype=np.uint8)
    known = np.ones((16, 16), bool)
    known[2:14, 3:13] = False
    return SampleRequest(canvas=canvas, known=known, seed=4, candidates=candidates, iterations=(4, 2))


def top_level_outputs(model, request, monkeypatch) -> list[torch.Tensor]:
    """Every condition the top level hands down during a run (in order)."""
    seen = []
    real = sampler_module._Run.predict_where_needed

    def recording(self, level, patches, masked, cond_tokens, rows, cols):
        out = real(self, level, patches, masked, cond_tokens, rows, cols)
        if level is self.model.levels[0]:
            seen.append([c.clone() for c in out])
        return out

    monkeypatch.setattr(sampler_module._Run, "predict_where_needed", recording)
    sample_all(model, request)
    monkeypatch.setattr(sampler_module._Run, "predict_where_needed", real)
    return seen


@pytest.mark.parametrize("preset", ["tiny_mar_in16", "tiny_ar_in16"])
def test_the_top_levels_outputs_are_kept_and_the_finer_pixels_change(preset, monkeypatch):
    model = random_model(preset)
    request = edit_request()
    first = sample_all(model, request)
    reference = np.stack(first.candidates)
    varied_request = replace(request, reference=reference, detail_seed=99)
    varied = sample_all(model, varied_request)
    for a, b in zip(first.candidates, varied.candidates, strict=True):
        assert np.array_equal(a[request.known], b[request.known])  # known pixels bit-exact
        assert not np.array_equal(a[~request.known], b[~request.known])  # new detail
    if preset.startswith("tiny_mar"):
        kept = top_level_outputs(model, request, monkeypatch)
        again = top_level_outputs(model, varied_request, monkeypatch)
        assert len(kept) == len(again) > 1
        for step_a, step_b in zip(kept, again, strict=True):
            for a, b in zip(step_a, step_b, strict=True):
                assert torch.equal(a, b)  # the layout: identical top-level outputs at every step
    # The same detail seed gives the same pixels again.
    assert all(np.array_equal(a, b) for a, b in
               zip(varied.candidates, sample_all(model, varied_request).candidates, strict=True))


def test_a_reference_needs_its_seed_and_the_right_shape():
    model = random_model("tiny_mar_in16")
    request = edit_request()
    with pytest.raises(UserError, match="vary"):
        sample_all(model, replace(request, detail_seed=3))
    with pytest.raises(UserError, match="shape"):
        sample_all(model, replace(request, reference=np.zeros((1, 16, 16, 3), np.uint8), detail_seed=3))
