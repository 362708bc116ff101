"""The guiding-pixel target at rounding ties, against values recorded from the authors' implementation.

`tie_cases.safetensors` holds images whose 2x2 and 4x4 patch means all end in exactly .5 (see
tests/fixtures/reference/README.md): there the quantised target depends on how the mean is computed
in float32, and the authors' order (mean over the last axis, then again) is the one that matches.
"""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file

from fractal_studio.model.layers import patchify
from fractal_studio.model.weights import load_model

from ..conftest import REFERENCE
from .test_reference import RTOL, relative_error

NAME = "tiny_fractalmar_4level_guiding"


@pytest.fixture(scope="module")
def tie_reference(converted):
    return load_model(converted[NAME]), load_file(str(REFERENCE / NAME / "tie_cases.safetensors"))


def guided_level_inputs(model, x):
    """[N, 3, p, p] reaching every guided level from images x [B, 3, H, W] (in any units) when every
    token is masked, so that every patch is passed down; in the model's order."""
    inputs = []
    for level in model.levels:
        if level.kind == "mar" and level.guiding_pixel:
            inputs.append(x)
        x = patchify(x, level.patch).reshape(-1, 3, level.patch, level.patch)
    return inputs


@pytest.mark.parametrize("kind", ["uncond", "cond"])
def test_objective_at_guiding_pixel_ties_matches_reference(tie_reference, kind):
    model, cases = tie_reference
    images, labels = cases["images"], cases["labels"]
    with torch.no_grad():
        for i in range(images.shape[0]):
            label = None if kind == "uncond" else labels[i:i + 1]
            ours = model.loss(images[i:i + 1], label, masks="all")
            assert relative_error(ours, cases[f"nll_allmasked_{kind}_{i}"]) < RTOL, i


def test_tie_images_make_the_mean_order_matter(tie_reference):
    model, cases = tie_reference
    images = cases["images"]
    for i in range(images.shape[0]):
        normalized = guided_level_inputs(model, model.normalize(images[i:i + 1]))
        pixels = guided_level_inputs(model, images[i:i + 1].long())
        assert [x.shape[-1] for x in normalized] == [4, 2]
        differing = 0
        for x, values in zip(normalized, pixels):
            area = x.shape[-1] ** 2
            sums = values.sum(dim=(2, 3))
            # Every patch mean lies exactly halfway between two pixel values ...
            assert (sums % area == area // 2).all(), (i, area)
            # ... so the two float32 orders of the mean round some of them differently.
            authors = model.quantize(x.mean(dim=-1).mean(dim=-1))
            other = model.quantize(x.mean(dim=(2, 3)))
            for guide in (authors, other):
                assert ((guide == sums // area) | (guide == sums // area + 1)).all()
            differing += int((authors != other).sum())
        assert differing > 0, i
