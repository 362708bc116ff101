"""Attention: the exact shortcut for a single key."""

import pytest
import torch
import torch.nn.functional as F

from fractal_studio.model.layers import attention


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_a_single_key_gives_exactly_what_the_kernel_gives(dtype):
    torch.manual_seed(0)
    q, k, v = (torch.randn(3, 4, 1, 16).to(dtype) for _ in range(3))
    expected = F.scaled_dot_product_attention(q.float(), k.float(), v.float()).to(dtype)
    got = attention(q, k, v)
    assert got.shape == expected.shape and got.dtype == dtype
    assert torch.equal(got, expected)


def test_a_single_key_with_several_queries_gives_each_the_value():
    torch.manual_seed(0)
    q, k, v = torch.randn(2, 2, 5, 8), torch.randn(2, 2, 1, 8), torch.randn(2, 2, 1, 8)
    expected = F.scaled_dot_product_attention(q, k, v)
    assert torch.equal(attention(q, k, v), expected)


def test_the_shortcut_is_not_taken_with_dropout():
    torch.manual_seed(0)
    q, k, v = torch.randn(2, 2, 1, 8), torch.randn(2, 2, 1, 8), torch.randn(2, 2, 1, 8)
    out = attention(q, k, v, dropout=0.9)  # dropout of the single weight zeroes most outputs
    assert (out == 0).any()


def test_under_bf16_autocast_attention_gets_bf16_inputs_with_no_cast_to_fp32_between(monkeypatch):
    """Autocast computes attention in bf16 on CPUs too: a cast of q, k, v to fp32 before it would
    only add copies (autocast casts them back)."""
    from fractal_studio.model import layers

    seen = []
    real = F.scaled_dot_product_attention
    monkeypatch.setattr(layers.F, "scaled_dot_product_attention",
                        lambda q, k, v, **kw: seen.append((q.dtype, k.dtype, v.dtype)) or real(q, k, v, **kw))
    module = layers.SelfAttention(32, 4).eval()
    x = torch.randn(2, 21, 32)
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16):
        out = module(x)
    assert seen == [(torch.bfloat16,) * 3] and out.dtype == torch.bfloat16
    seen.clear()
    with torch.inference_mode():
        exact = module(x)
    assert seen == [(torch.float32,) * 3]
    assert torch.allclose(out.float(), exact, atol=0.05)  # bf16 rounding of the same attention
