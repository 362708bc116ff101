"""Twins of a model for sampling on CPUs: the same modules over the same tensors, except that
linear layers hold their weights ready for the product (cast and packed once).

Why: decoding (an AR level feeding one token, a pixel head, a small batch) reads every weight
from memory once per token, so the cost is how the weights are stored, not the arithmetic.
- bf16: under autocast every fp32 weight is cast to bf16 again at every call. With few rows that
  cast costs more than the product: a 1024x4096 layer applied to 2 rows takes 2.3 ms under
  autocast, 1.9 ms in fp32 and 0.41 ms with weights already in bf16 (AVX512-BF16 CPU).
- Packing: where PyTorch has oneDNN, weights are also stored in oneDNN's blocked layout (the
  packing torch.compile's CPU backend does), which streams about 1.4x faster at a few rows: a
  512-wide AR level of 8 blocks at 2 rows takes 7.1 -> 4.8 ms per token in bf16 and
  16.8 -> 12.0 ms in fp32. No change for large batches (MAR levels). Small layers stay in the
  cache anyway, and oneDNN's call costs more there than the layout saves (a 96-wide AR level:
  0.50 -> 0.80 ms per token), so in AR levels only layers with PACK_MIN_WEIGHTS weights or more
  are packed. MAR levels multiply hundreds of rows (every token of every instance), where the
  packed layout gains at any width: in bf16 they are all packed (a 128-wide layer on 672 rows:
  99 -> 66 us; 256-wide on 2088 rows: 496 -> 409 us; Xeon with AMX).

So the bf16 twin converts every linear layer (and runs under autocast for everything else: its
arithmetic is autocast's, see PackedLinear), and the fp32 twin packs the large linear
layers of AR levels only: they are the ones that decode, and the packed copy costs memory (the
size of those layers again). Pixel heads are left as they are in both: the sampler runs them in
fp32 on CPUs, and they are too narrow to gain. Everything that is not a converted linear weight
(norms, embeddings, buffers) is shared with the original model, not copied.
"""

from __future__ import annotations

import copy
import threading
import weakref

import torch
import torch.nn as nn
import torch.nn.functional as F

from fractal_studio.model.ar import ARLevel
from fractal_studio.model.mar import MARLevel
from fractal_studio.model.pixel_head import PixelHead

PACK_MIN_WEIGHTS = 512 * 512

_twins: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # model -> {precision: (stamp, twin)}
_lock = threading.Lock()


class PackedLinear(nn.Module):
    """Inference-only stand-in for an nn.Linear computing in `dtype` from weights cast (and packed
    where possible) once. In bf16 the products are oneDNN's bf16 kernels, as under autocast, with
    the same results for the contiguous inputs the model feeds them (for strided inputs autocast
    adds the bias after rounding: one bf16 rounding apart there)."""

    def __init__(self, linear: nn.Linear, dtype: torch.dtype, pack_any_size: bool = False):
        super().__init__()
        self.in_features, self.out_features = linear.in_features, linear.out_features
        self.dtype = dtype
        weight = linear.weight.detach().to(dtype)
        self.bias = None if linear.bias is None else linear.bias.detach().to(dtype)
        self.packed = _onednn_packed(weight) if pack_any_size or _worth_packing(linear) else None
        self.weight = weight if self.packed is None else None  # one copy only

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.to(self.dtype)
        if self.packed is None:
            return F.linear(x, self.weight, self.bias)
        return torch.ops.mkldnn._linear_pointwise(x.contiguous(), self.packed, self.bias, "none", [], "")


def _onednn_packed(weight: torch.Tensor) -> torch.Tensor | None:
    """The weight in oneDNN's blocked layout, or None where this PyTorch build cannot do it (or,
    on a platform where it has not been tried, gives other products than the plain layer)."""
    if weight.device.type != "cpu" or not torch.backends.mkldnn.is_available():
        return None
    try:
        packed = torch.ops.mkldnn._reorder_linear_weight(weight, None)
        probe = torch.linspace(-1, 1, weight.shape[1], dtype=weight.dtype).unsqueeze(0)
        product = torch.ops.mkldnn._linear_pointwise(probe, packed, None, "none", [], "")
    except (AttributeError, RuntimeError, TypeError):  # op missing, unsupported, or its signature changed
        return None
    rows = slice(0, 64)  # enough outputs to catch a wrong kernel, cheap next to the packing
    expected = F.linear(probe, weight[rows]).float()
    tolerance = 1e-2 if weight.dtype == torch.bfloat16 else 1e-4
    scale = float(expected.abs().max())
    if not torch.allclose(product[:, rows].float(), expected, rtol=tolerance, atol=tolerance * scale):
        return None
    return packed


def cpu_sampling_twin(model: nn.Module, precision: str) -> nn.Module:
    """The model to sample with on a CPU at `precision` ("bf16" or "fp32"): built on first use,
    rebuilt when a linear weight changed since; the model itself when there is nothing to gain.
    The twin is in the model's mode (train or eval) as of this call."""
    with _lock:  # a model loaded in one thread may start a run in another: build once
        stamp = _weights_stamp(model)
        cached = _twins.setdefault(model, {}).get(precision)
        if cached is None or cached[0] != stamp:
            cached = (stamp, _build_twin(model, precision))
            _twins[model][precision] = cached
    twin = cached[1]
    return model if twin is None else twin.train(model.training)


def _build_twin(model: nn.Module, precision: str) -> nn.Module | None:
    """The twin, or None where it would gain nothing (kept as None: the model itself cannot be a
    value of the weak cache, it would keep itself alive)."""
    if precision == "fp32" and not _fp32_twin_gains(model):
        return None
    shared: dict[int, object] = {id(t): t for t in (*model.parameters(), *model.buffers())}
    twin = copy.deepcopy(model, shared)  # new modules over the same tensors
    if precision == "bf16":
        _replace_linears(twin, torch.bfloat16, packable_only=False)
    else:
        for level in twin.modules():
            if isinstance(level, ARLevel):
                _replace_linears(level, torch.float32, packable_only=True)
    return twin


def _fp32_twin_gains(model: nn.Module) -> bool:
    """Whether an AR level has a layer worth packing, and this PyTorch can pack fp32 weights."""
    wide = any(_worth_packing(linear) for level in model.modules() if isinstance(level, ARLevel)
               for linear in _linears(level))
    return wide and _onednn_packed(torch.zeros(1, 1)) is not None


def _worth_packing(linear: nn.Linear) -> bool:
    return linear.weight.numel() >= PACK_MIN_WEIGHTS


def _replace_linears(module: nn.Module, dtype: torch.dtype, packable_only: bool,
                     pack_any_size: bool = False) -> None:
    """packable_only: convert only the layers worth packing; pack_any_size: pack every converted
    layer (bf16 MAR levels, see the module's docstring)."""
    for name, child in module.named_children():
        if isinstance(child, nn.Linear):
            if _worth_packing(child) or not packable_only:
                setattr(module, name, PackedLinear(child, dtype, pack_any_size))
        elif not isinstance(child, PixelHead):
            many_rows = pack_any_size or (dtype == torch.bfloat16 and isinstance(child, MARLevel))
            _replace_linears(child, dtype, packable_only, many_rows)


def _linears(model: nn.Module) -> list[nn.Linear]:
    return [module for module in model.modules() if isinstance(module, nn.Linear)]


def _weights_stamp(model: nn.Module) -> tuple:
    """Changes when a linear weight is replaced or modified in place (tensor version counters)."""
    return tuple((id(p), p._version) for linear in _linears(model)
                 for p in (linear.weight, linear.bias) if p is not None)
