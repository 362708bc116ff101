"""A MAR level's pass restricted to the patches sampling reads gives what the full pass gives."""

from __future__ import annotations

import pytest
import torch

from fractal_studio.model import FractalModel
from fractal_studio.model.config import from_authors_lists
from fractal_studio.model.mar import neighbour_queries
from fractal_studio.sampling import SampleRequest, sample_all
from fractal_studio.sampling.sampler import prepare_sampling

from ..conftest import random_model


def level_inputs(level, count: int, seed: int):
    generator = torch.Generator().manual_seed(seed)
    patches = torch.randn(count, level.seq_len, 3 * level.patch ** 2, generator=generator)
    mask = torch.rand(count, level.seq_len, generator=generator) < 0.5
    conds = [torch.randn(count, level.cond_emb.in_features, generator=generator)
             for _ in range(level.num_conds)]
    guide = torch.randn(count, 3, generator=generator) if level.guiding_pixel else None
    return patches, mask, conds, guide


def predict_patches(level, inputs, rows, cols):
    patches, mask, conds, guide = inputs
    return level.predict_patches(patches, mask, level.condition_tokens(conds, guide), rows, cols)


# Instances predicting different numbers of patches (ragged), one predicting none, a patch on
# every edge and corner, and two neighbouring patches of one instance.
ROWS = torch.tensor([0, 0, 0, 2, 3, 3, 4, 4, 4, 4])
COLS = torch.tensor([0, 1, 15, 5, 12, 3, 6, 7, 10, 9])


@pytest.mark.parametrize("preset", ["tiny_mar_in16", "tiny_mar_guiding_in16"])
def test_the_patches_outputs_equal_the_full_pass_in_fp32(preset):
    model = random_model(preset, class_num=3)
    for index, level in enumerate(model.levels):
        if level.kind != "mar" or level.seq_len != 16:
            continue
        inputs = level_inputs(level, 5, seed=index)
        with torch.inference_mode():
            full = level.predict(*inputs)
            picked = predict_patches(level, inputs, ROWS, COLS)
        assert len(picked) == level.conditions_below
        for whole, part in zip(full, picked):
            assert part.shape == (len(ROWS), whole.shape[-1])
            torch.testing.assert_close(part, whole[ROWS, COLS], rtol=1e-5, atol=1e-6)
        if level.conditions_below == 5:
            # A neighbour past the edge is zero, as in the full pass: patch 0 has no top or left.
            assert not picked[1][0].any() and not picked[4][0].any() and picked[2][0].any()


@pytest.mark.parametrize("count", [1, 5])
@pytest.mark.parametrize("rows, cols", [(ROWS, COLS),  # ragged
                                        (torch.arange(5), torch.tensor([0, 15, 6, 3, 12]))])  # one each
def test_the_conditions_read_below_equal_the_full_pass(count, rows, cols):
    level = random_model("tiny_mar_in16", class_num=3).levels[0]
    level.conditions_below = count
    inputs = level_inputs(level, 5, seed=1)
    with torch.inference_mode():
        full = level.predict(*inputs)
        picked = predict_patches(level, inputs, rows, cols)
    assert len(picked) == count
    for whole, part in zip(full, picked):
        torch.testing.assert_close(part, whole[rows, cols], rtol=1e-5, atol=1e-6)


def test_a_model_tells_each_mar_level_what_the_level_below_reads():
    mar = random_model("tiny_mar_guiding_in16", class_num=3)  # MAR, MAR, MAR, then the pixel head
    assert [level.conditions_below for level in mar.levels] == [5, 5, 1]
    config = from_authors_lists("mar_over_ar", (16, 4, 1), (32, 16, 16), (1, 1, 1), (2, 2, 2), ("mar", "ar"),
                                num_conds=5)
    mixed = FractalModel(config)  # MAR, AR, then the pixel head
    assert mixed.levels[0].conditions_below == 1  # an AR level reads the middle condition only
    finished = sample_all(mixed.eval(), SampleRequest.generate(16, candidates=2, seed=0, cfg=1.0))
    assert len(finished.candidates) == 2 and finished.candidates[0].shape == (16, 16, 3)


def test_the_patches_outputs_follow_the_full_pass_in_bf16():
    model = random_model("tiny_mar_in16", class_num=3)
    level = prepare_sampling(model, "bf16").levels[0]
    inputs = level_inputs(level, 5, seed=3)
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16):
        full = level.predict(*inputs)
        picked = predict_patches(level, inputs, ROWS, COLS)
    for whole, part in zip(full, picked, strict=True):
        torch.testing.assert_close(part.float(), whole[ROWS, COLS].float(), rtol=2e-2, atol=2e-2)


def test_the_last_block_computes_only_the_read_tokens(monkeypatch):
    """Fewer queries than tokens: the saving happens (the last block sees [N, M] queries)."""
    model = random_model("tiny_mar_in16", class_num=3)
    level = model.levels[0]
    seen = []
    real = type(level.blocks[-1]).forward

    def recording(block, x, causal=False, cache=None, queries=None):
        seen.append(None if queries is None else tuple(queries.shape))
        return real(block, x, causal, cache, queries)

    monkeypatch.setattr(type(level.blocks[-1]), "forward", recording)
    rows, cols = torch.tensor([0, 1]), torch.tensor([5, 6])
    with torch.inference_mode():
        predict_patches(level, level_inputs(level, 2, seed=0), rows, cols)
    assert seen[:-1] == [None] * (len(level.blocks) - 1)
    assert seen[-1] == (2, 5)
    level.conditions_below = 1  # above the pixel head: the patches' own tokens only
    seen.clear()
    with torch.inference_mode():
        predict_patches(level, level_inputs(level, 2, seed=0), rows, cols)
    assert seen[-1] == (2, 1)


def test_neighbour_queries_place_each_patch_and_its_neighbours():
    rows, cols = torch.tensor([1, 0, 1]), torch.tensor([5, 3, 0])
    queries, slots, inside = neighbour_queries(rows, cols, grid=4, batch=3)
    assert queries.shape == (3, 10)  # instance 1 predicts two patches: 2 x 5 slots
    flat = queries.flatten()
    # Patch 5 of a 4x4 grid: itself, top 1, right 6, bottom 9, left 4.
    assert flat[slots[0]].tolist() == [5, 1, 6, 9, 4]
    assert inside[0].all()
    # Patch 3 (top right corner): no top, no right.
    assert inside[1].tolist() == [True, False, False, True, True]
    assert flat[slots[1]][[0, 3, 4]].tolist() == [3, 7, 2]
    # Patch 0 of instance 1 comes second in its instance's slots.
    assert slots[2].tolist() == [15, 16, 17, 18, 19]
    assert inside[2].tolist() == [True, False, True, True, False]


def test_neighbour_queries_for_one_patch_per_instance_take_each_instances_row():
    rows, cols = torch.arange(3), torch.tensor([5, 3, 0])
    queries, slots, inside = neighbour_queries(rows, cols, grid=4, batch=3)
    assert queries.tolist() == [[5, 1, 6, 9, 4], [3, 3, 3, 7, 2], [0, 0, 1, 4, 0]]
    assert slots.tolist() == [[0, 1, 2, 3, 4], [5, 6, 7, 8, 9], [10, 11, 12, 13, 14]]
    assert inside[1].tolist() == [True, False, False, True, True]
    middle, slots, inside = neighbour_queries(rows, cols, grid=4, batch=3, count=1)
    assert middle.tolist() == [[5], [3], [0]] and slots.tolist() == [[0], [1], [2]]
    assert inside.all()
