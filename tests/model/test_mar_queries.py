"""A MAR level's pass restricted to the patches sampling reads gives what the full pass gives."""

from __future__ import annotations

import pytest
import torch

from fractal_studio.model.mar import neighbour_queries
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
            picked = level.predict_patches(*inputs, ROWS, COLS)
        assert len(picked) == 5
        for whole, part in zip(full, picked, strict=True):
            assert part.shape == (len(ROWS), whole.shape[-1])
            torch.testing.assert_close(part, whole[ROWS, COLS], rtol=1e-5, atol=1e-6)
        # A neighbour past the edge is zero, as in the full pass: patch 0 has no top or left.
        assert not picked[1][0].any() and not picked[4][0].any() and picked[2][0].any()


def test_the_patches_outputs_follow_the_full_pass_in_bf16():
    model = random_model("tiny_mar_in16", class_num=3)
    level = prepare_sampling(model, "bf16").levels[0]
    inputs = level_inputs(level, 5, seed=3)
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16):
        full = level.predict(*inputs)
        picked = level.predict_patches(*inputs, ROWS, COLS)
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
        level.predict_patches(*level_inputs(level, 2, seed=0), rows, cols)
    assert seen[:-1] == [None] * (len(level.blocks) - 1)
    assert seen[-1] == (2, 5)


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
