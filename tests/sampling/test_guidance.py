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


def _two_bumps() -> torch.Tensor:
    """A pixel the model is unsure of: most mass around 120, a spike of clipped shadows at 0."""
    probs = torch.zeros(256)
    probs[0] = 0.30  # the single most likely value
    probs[100:141] = 0.70 / 41
    return probs.log().clamp(min=-1e9).expand(20000, -1)


def test_spread_one_is_the_exact_draw():
    logits = _two_bumps()
    exact = draw_categorical(logits, torch.Generator().manual_seed(5))
    same = draw_categorical(logits, torch.Generator().manual_seed(5), spread=1.0)
    assert torch.equal(exact, same)
    assert abs(float((exact == 0).float().mean()) - 0.30) < 0.02


def test_spread_keeps_draws_in_the_central_mass_and_zero_is_the_median():
    logits = _two_bumps()
    median = draw_categorical(logits, torch.Generator().manual_seed(1), spread=0.0)
    assert (median == 111).all()  # the CDF crosses 0.5 at 0.30 + 12 * 0.70 / 41, within the main bump
    central = draw_categorical(logits, torch.Generator().manual_seed(1), spread=0.3)
    assert not (central == 0).any()  # the spike holds the lowest 30% of the mass: outside 0.35..0.65
    assert 100 <= int(central.min()) and int(central.max()) <= 140
    # A lower temperature does the opposite for such a pixel: it picks the spike.
    cold = draw_categorical(logits / 0.05, torch.Generator().manual_seed(1))
    assert float((cold == 0).float().mean()) > 0.99
