"""The bf16 twin used for bf16 sampling on CPUs: autocast's results, built once, never stale."""

import numpy as np
import pytest
import torch

from fractal_studio.model import bf16_twin
from fractal_studio.model.bf16_twin import Bf16Linear, bf16_linear_twin
from fractal_studio.model.pixel_head import PixelHead
from fractal_studio.sampling import SampleRequest, sample_all, sampler

from ..conftest import random_model


def _autocast_linear(linear: torch.nn.Linear, x: torch.Tensor) -> torch.Tensor:
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        return linear(x)


def test_twin_replaces_linears_outside_the_pixel_heads_and_shares_everything_else():
    model = random_model("tiny_mar_guiding_in16", class_num=3)
    twin = bf16_linear_twin(model)
    assert bf16_linear_twin(model) is twin  # built once
    assert sum(isinstance(m, Bf16Linear) for m in twin.modules()) > 10
    for head in (twin.head, twin.levels[1].guide_head, twin.levels[2].guide_head):
        assert not any(isinstance(m, Bf16Linear) for m in head.modules())
        assert head.cond_proj.weight is not None and head.cond_proj.weight.dtype == torch.float32
    assert twin.head.cond_proj.weight is model.head.cond_proj.weight  # shared, not copied
    assert twin.class_emb.weight is model.class_emb.weight
    outside_heads = [m for name, m in model.named_modules()
                     if isinstance(m, torch.nn.Linear) and "head" not in name]
    assert not any(isinstance(m, Bf16Linear) for m in model.modules())  # the original is untouched
    assert all(m.weight.dtype == torch.float32 for m in outside_heads)


@pytest.mark.parametrize("packed", [True, False])
def test_bf16_linear_computes_what_autocast_computes(monkeypatch, packed):
    if not packed:  # a PyTorch build without oneDNN: plain bf16 weights
        monkeypatch.setattr(bf16_twin, "_onednn_packed", lambda weight: None)
    torch.manual_seed(0)
    for bias in (True, False):
        linear = torch.nn.Linear(48, 80, bias=bias)
        twin = Bf16Linear(linear)
        assert (twin.packed is not None) == (packed and torch.backends.mkldnn.is_available())
        for x in (torch.randn(2, 48), torch.randn(3, 5, 48)):  # contiguous, as the model's are
            out = twin(x)
            assert out.dtype == torch.bfloat16 and out.shape == (*x.shape[:-1], 80)
            assert torch.equal(out, _autocast_linear(linear, x))
        # A strided input: autocast then adds the bias after rounding, the twin before.
        x = torch.randn(5, 3, 48).transpose(0, 1)
        difference = (twin(x).float() - _autocast_linear(linear, x).float()).abs()
        assert float(difference.max()) <= 2 ** -7 * float(_autocast_linear(linear, x).abs().max())


def test_twin_is_rebuilt_after_the_weights_change_in_place():
    model = random_model("tiny_mar_in16")
    twin = bf16_linear_twin(model)
    linear = model.levels[0].blocks[0].attn.qkv
    x = torch.randn(2, linear.in_features)
    before = twin.levels[0].blocks[0].attn.qkv(x)
    with torch.no_grad():
        linear.weight.add_(1.0)
    fresh = bf16_linear_twin(model)
    assert fresh is not twin
    after = fresh.levels[0].blocks[0].attn.qkv(x)
    assert not torch.equal(before, after)
    assert torch.equal(after, _autocast_linear(linear, x))


def test_bf16_sampling_with_the_twin_gives_autocasts_pixels(monkeypatch):
    for name in ("tiny_ar_in16", "tiny_mar_guiding_in16"):
        model = random_model(name, class_num=3)
        request = SampleRequest.generate(16, class_id=1, cfg=2.0, candidates=2, seed=4, precision="bf16")
        with_twin = sample_all(model, request).candidates
        monkeypatch.setattr(sampler, "bf16_linear_twin", lambda m: m)
        plain_autocast = sample_all(model, request).candidates
        monkeypatch.undo()
        assert all(np.array_equal(a, b) for a, b in zip(with_twin, plain_autocast))


def test_pixel_heads_sample_in_fp32_on_cpus(monkeypatch):
    seen = []
    original = PixelHead.next_logits

    def spy(self, token, channel, caches):
        seen.append((token.dtype, torch.is_autocast_enabled("cpu")))
        return original(self, token, channel, caches)

    monkeypatch.setattr(PixelHead, "next_logits", spy)
    model = random_model("tiny_ar_in16", class_num=3)
    sample_all(model, SampleRequest.generate(16, class_id=1, cfg=2.0, seed=1, precision="bf16"))
    assert seen and all(dtype == torch.float32 and not autocast for dtype, autocast in seen)
