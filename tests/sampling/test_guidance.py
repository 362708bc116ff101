import torch

from fractal_studio.sampling.guidance import draw_categorical, guidance_at, guided_logits


def test_draws_follow_the_distribution_and_never_pick_impossible_values():
    probs = torch.tensor([0.0, 0.5, 0.0, 0.3, 0.15, 0.05, 0.0, 0.0])
    logits = probs.log().expand(200_000, -1)  # log(0) = -inf: impossible values
    rng = torch.Generator().manual_seed(0)
    draws = draw_categorical(logits, rng)
    counts = torch.bincount(draws, minlength=8).float() / draws.numel()
    assert counts[probs == 0].sum() == 0
    # 200k draws: the standard error of a share is at most 0.0011
    assert torch.allclose(counts, probs, atol=0.005)


def test_draws_are_reproducible_with_the_same_generator_and_shaped_per_row():
    logits = torch.randn(64, 256)
    first = draw_categorical(logits, torch.Generator().manual_seed(3))
    again = draw_categorical(logits, torch.Generator().manual_seed(3))
    assert first.shape == (64,) and first.dtype == torch.int64
    assert torch.equal(first, again)
    assert int(first.min()) >= 0 and int(first.max()) <= 255


def test_a_certain_value_is_always_drawn_even_when_it_is_the_last():
    logits = torch.full((1000, 256), float("-inf"))
    logits[:, 255] = 0.0
    assert bool((draw_categorical(logits, torch.Generator().manual_seed(1)) == 255).all())


def test_guidance_pushes_towards_the_conditional_and_filters_unlikely_values():
    cond = torch.tensor([[4.0, 0.0, -20.0]])
    uncond = torch.tensor([[0.0, 4.0, 2.0]])
    guided = guided_logits(cond, uncond, temperature=1.0, cfg=3.0, filter_threshold=1e-4)
    assert int(guided.argmax()) == 0
    # value 2 is very unlikely under the condition: guidance must not make it likelier than value 1
    assert guided[0, 2] < guided[0, 1]
    assert guidance_at(3.0, "linear", 0.5) == 2.0 and guidance_at(3.0, "constant", 0.1) == 3.0
