"""The bf16 twin used for bf16 sampling on CPUs: autocast's results, built once, never stale."""

import numpy as np
import torch

from fractal_studio.model.bf16_twin import bf16_linear_twin
from fractal_studio.sampling import SampleRequest, sample_all, sampler

from ..conftest import random_model


def test_twin_holds_bf16_linear_weights_and_shares_everything_else():
    model = random_model("tiny_ar_in16", class_num=3)
    twin = bf16_linear_twin(model)
    assert bf16_linear_twin(model) is twin  # built once
    linears = [m for m in twin.modules() if isinstance(m, torch.nn.Linear)]
    assert linears and all(m.weight.dtype == torch.bfloat16 for m in linears)
    assert twin.class_emb.weight is model.class_emb.weight  # shared, not copied
    assert all(m.weight.dtype == torch.float32 for m in model.modules() if isinstance(m, torch.nn.Linear))


def test_twin_is_rebuilt_after_the_weights_change_in_place():
    model = random_model("tiny_mar_in16")
    twin = bf16_linear_twin(model)
    linear = next(m for m in model.modules() if isinstance(m, torch.nn.Linear))
    with torch.no_grad():
        linear.weight.add_(1.0)
    fresh = bf16_linear_twin(model)
    assert fresh is not twin
    fresh_linear = next(m for m in fresh.modules() if isinstance(m, torch.nn.Linear))
    assert torch.equal(fresh_linear.weight, linear.weight.to(torch.bfloat16))


def test_bf16_sampling_with_the_twin_gives_autocasts_pixels(monkeypatch):
    for name in ("tiny_ar_in16", "tiny_mar_guiding_in16"):
        model = random_model(name, class_num=3)
        request = SampleRequest.generate(16, class_id=1, cfg=2.0, candidates=2, seed=4, precision="bf16")
        with_twin = sample_all(model, request).candidates
        monkeypatch.setattr(sampler, "bf16_linear_twin", lambda m: m)
        plain_autocast = sample_all(model, request).candidates
        monkeypatch.undo()
        assert all(np.array_equal(a, b) for a, b in zip(with_twin, plain_autocast))
