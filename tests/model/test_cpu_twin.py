"""The CPU sampling twins: autocast's results in bf16, faithful fp32 AR levels, built once, never stale."""

import numpy as np
import pytest
import torch

from fractal_studio.model import cpu_twin
from fractal_studio.model.cpu_twin import PackedLinear, cpu_sampling_twin
from fractal_studio.model.pixel_head import PixelHead
from fractal_studio.sampling import SampleRequest, prepare_sampling, sample_all, sampler

from ..conftest import random_model

onednn = pytest.mark.skipif(not torch.backends.mkldnn.is_available(), reason="PyTorch built without oneDNN")
# oneDNN packs bf16 weights only on CPUs with bf16 instructions (not on an AVX2-only EPYC).
BF16_PACKS = cpu_twin._onednn_packed(torch.zeros(8, 8, dtype=torch.bfloat16)) is not None


@pytest.fixture
def pack_everything(monkeypatch):
    """Tiny models' layers are below the packing size: pack them anyway, to test the packed path."""
    monkeypatch.setattr(cpu_twin, "PACK_MIN_WEIGHTS", 0)


def _autocast_linear(linear: torch.nn.Linear, x: torch.Tensor) -> torch.Tensor:
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        return linear(x)


def _packed(module: torch.nn.Module) -> list[PackedLinear]:
    return [m for m in module.modules() if isinstance(m, PackedLinear)]


def test_bf16_twin_replaces_linears_outside_the_pixel_heads_and_shares_everything_else():
    model = random_model("tiny_mar_guiding_in16", class_num=3)
    twin = cpu_sampling_twin(model, "bf16")
    assert cpu_sampling_twin(model, "bf16") is twin  # built once
    assert len(_packed(twin)) > 10 and all(m.dtype == torch.bfloat16 for m in _packed(twin))
    for head in (twin.head, twin.levels[1].guide_head, twin.levels[2].guide_head):
        assert not _packed(head)
        assert head.cond_proj.weight.dtype == torch.float32
    assert twin.head.cond_proj.weight is model.head.cond_proj.weight  # shared, not copied
    assert twin.class_emb.weight is model.class_emb.weight
    assert not _packed(model)  # the original is untouched


@onednn
def test_fp32_twin_packs_the_ar_levels_only(pack_everything):
    ar_model = random_model("tiny_ar_in16", class_num=3)
    twin = cpu_sampling_twin(ar_model, "fp32")
    assert twin is not ar_model and twin is not cpu_sampling_twin(ar_model, "bf16")
    for level in twin.levels:
        assert _packed(level) and all(m.dtype == torch.float32 for m in _packed(level))
    assert not _packed(twin.head)
    mar_model = random_model("tiny_mar_in16")
    assert not _packed(cpu_sampling_twin(mar_model, "fp32"))


def test_narrow_models_sample_fp32_with_the_model_itself_and_small_layers_stay_unpacked():
    model = random_model("tiny_ar_in16", class_num=3)
    assert cpu_sampling_twin(model, "fp32") is model  # nothing there worth packing
    layers = _packed(cpu_sampling_twin(model, "bf16"))
    assert layers and all(layer.packed is None and layer.weight.dtype == torch.bfloat16 for layer in layers)


def test_mar_levels_pack_every_layer_in_bf16_as_they_multiply_many_rows():
    """A MAR level multiplies every token of every instance: the packed layout gains at any width."""
    model = random_model("tiny_mar_in16", class_num=3)  # every layer far below PACK_MIN_WEIGHTS
    twin = cpu_sampling_twin(model, "bf16")
    for level in twin.levels:
        layers = _packed(level)
        assert layers and all(layer.dtype == torch.bfloat16 for layer in layers)
        if BF16_PACKS:
            assert all(layer.packed is not None for layer in layers)
    assert not _packed(twin.head)


@pytest.mark.parametrize("packed", [True, False])
def test_bf16_linear_computes_what_autocast_computes(monkeypatch, pack_everything, packed):
    if not packed:  # a PyTorch build without oneDNN: plain bf16 weights
        monkeypatch.setattr(cpu_twin, "_onednn_packed", lambda weight: None)
    torch.manual_seed(0)
    for bias in (True, False):
        linear = torch.nn.Linear(48, 80, bias=bias)
        twin = PackedLinear(linear, torch.bfloat16)
        assert (twin.packed is not None) == (packed and BF16_PACKS)
        for x in (torch.randn(2, 48), torch.randn(3, 5, 48)):  # contiguous, as the model's are
            out = twin(x)
            assert out.dtype == torch.bfloat16 and out.shape == (*x.shape[:-1], 80)
            assert torch.equal(out, _autocast_linear(linear, x))
        # A strided input: autocast then adds the bias after rounding, the twin before.
        x = torch.randn(5, 3, 48).transpose(0, 1)
        expected = _autocast_linear(linear, x).float()
        assert float((twin(x).float() - expected).abs().max()) <= 2 ** -7 * float(expected.abs().max())


def test_fp32_linear_matches_the_layer_to_rounding(pack_everything):
    torch.manual_seed(1)
    linear = torch.nn.Linear(96, 64)
    twin = PackedLinear(linear, torch.float32)
    for x in (torch.randn(2, 96), torch.randn(4, 7, 96), torch.randn(7, 4, 96).transpose(0, 1)):
        with torch.no_grad():
            torch.testing.assert_close(twin(x), linear(x), rtol=1e-5, atol=1e-5)


def test_twin_is_rebuilt_after_the_weights_change_in_place():
    model = random_model("tiny_mar_in16")
    twin = cpu_sampling_twin(model, "bf16")
    linear = model.levels[0].blocks[0].attn.qkv
    x = torch.randn(2, linear.in_features)
    before = twin.levels[0].blocks[0].attn.qkv(x)
    with torch.no_grad():
        linear.weight.add_(1.0)
    fresh = cpu_sampling_twin(model, "bf16")
    assert fresh is not twin
    after = fresh.levels[0].blocks[0].attn.qkv(x)
    assert not torch.equal(before, after)
    assert torch.equal(after, _autocast_linear(linear, x))


def test_bf16_sampling_with_the_twin_gives_autocasts_pixels(monkeypatch):
    for name in ("tiny_ar_in16", "tiny_mar_guiding_in16"):
        model = random_model(name, class_num=3)
        request = SampleRequest.generate(16, class_id=1, cfg=2.0, candidates=2, seed=4, precision="bf16")
        with_twin = sample_all(model, request).candidates
        monkeypatch.setattr(sampler, "cpu_sampling_twin", lambda m, precision: m)
        plain_autocast = sample_all(model, request).candidates
        monkeypatch.undo()
        assert all(np.array_equal(a, b) for a, b in zip(with_twin, plain_autocast))


@onednn
def test_fp32_twin_decodes_the_same_conditions_as_the_model(pack_everything):
    """Packed fp32 products differ from the layer's only in rounding: an AR level fed the same
    tokens through its KV cache gives the same conditions to float tolerance."""
    model = random_model("tiny_ar_in16", class_num=3)
    twin = cpu_sampling_twin(model, "fp32")
    torch.manual_seed(2)
    level, twin_level = model.levels[0], twin.levels[0]
    cond = torch.randn(2, level.cond_emb.in_features)
    patches = torch.randn(2, level.seq_len, 3 * level.patch ** 2)
    with torch.inference_mode():
        caches, twin_caches = (lv.new_caches(2, "cpu", torch.float32) for lv in (level, twin_level))
        for position in range(level.seq_len):
            chunk = patches[:, max(position - 1, 0):position]
            expected = level.step(cond, chunk, position, caches)
            torch.testing.assert_close(twin_level.step(cond, chunk, position, twin_caches), expected,
                                       rtol=1e-4, atol=1e-5)


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


def test_a_run_computes_with_the_twin_prepared_after_loading(monkeypatch):
    model = random_model("tiny_mar_in16")
    prepared = prepare_sampling(model, "bf16")
    assert prepared is not model and _packed(prepared)
    used = set()
    original = PackedLinear.forward

    def spy(self, x):
        used.add(id(self))
        return original(self, x)

    monkeypatch.setattr(PackedLinear, "forward", spy)
    sample_all(model, SampleRequest.generate(16, seed=3, precision="bf16"))
    assert used and used <= {id(m) for m in _packed(prepared)}
    assert prepare_sampling(model, "fp32") is model  # nothing to prepare for a narrow fp32 model


def test_the_twin_follows_the_models_mode():
    model = random_model("tiny_mar_in16")
    assert not cpu_sampling_twin(model, "bf16").training
    model.train()
    assert all(m.training for m in cpu_sampling_twin(model, "bf16").modules())
    model.eval()
    assert not any(m.training for m in cpu_sampling_twin(model, "bf16").modules())


@onednn
def test_packing_is_refused_where_its_products_are_not_the_layers(monkeypatch, pack_everything):
    linear = torch.nn.Linear(64, 32)
    assert PackedLinear(linear, torch.float32).packed is not None
    reorder, product = torch.ops.mkldnn._reorder_linear_weight, torch.ops.mkldnn._linear_pointwise
    calls = []

    class BrokenOps:  # a platform whose packed kernel gives other numbers
        @staticmethod
        def _reorder_linear_weight(weight, batch):
            return reorder(weight, batch)

        @staticmethod
        def _linear_pointwise(*args):
            calls.append(args)
            return product(*args) * 1.5

    monkeypatch.setattr(torch.ops, "mkldnn", BrokenOps, raising=False)
    layer = PackedLinear(linear, torch.float32)
    monkeypatch.undo()
    assert calls and layer.packed is None  # tried, compared, refused
    x = torch.randn(3, 64)
    with torch.no_grad():
        torch.testing.assert_close(layer(x), linear(x))


@pytest.mark.parametrize("error", [AttributeError, RuntimeError, TypeError])
def test_packing_falls_back_when_the_private_op_is_missing_or_changed(monkeypatch, pack_everything, error):
    class ChangedOps:  # another PyTorch: the op gone, failing, or with another signature
        @staticmethod
        def _reorder_linear_weight(*args):
            raise error("changed")

    monkeypatch.setattr(torch.ops, "mkldnn", ChangedOps, raising=False)
    linear = torch.nn.Linear(32, 16)
    layer = PackedLinear(linear, torch.bfloat16)
    monkeypatch.undo()
    assert layer.packed is None and layer.weight.dtype == torch.bfloat16
    x = torch.randn(2, 32)
    assert torch.equal(layer(x), _autocast_linear(linear, x))


def test_a_twin_is_freed_with_its_model():
    """The app replaces its model when the user loads another: the twin must not outlive it."""
    import gc
    import weakref

    model = random_model("tiny_mar_in16")
    twin = weakref.ref(cpu_sampling_twin(model, "bf16"))
    assert twin() is not None
    del model
    gc.collect()
    assert twin() is None
