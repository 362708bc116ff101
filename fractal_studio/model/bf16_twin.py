"""A twin of a model whose linear layers hold bf16 weights, for bf16 sampling on CPUs.

Under autocast every fp32 weight is cast to bf16 again at every call. When a call has few rows
(an AR level decoding one token, a pixel head, a small batch) that cast costs far more than the
product itself: on an AVX512-BF16 CPU a 1024x4096 layer applied to 2 rows takes 2.3 ms under
autocast, 1.9 ms in fp32 and 0.41 ms with weights already in bf16. The twin holds those casts once.

Where PyTorch was built with oneDNN, the bf16 weights are also stored in oneDNN's blocked layout
(the packing torch.compile's CPU backend does): decoding reads every weight once per token from
memory, and the blocked layout streams it about 1.5x faster at a few rows (a 512-wide AR level
with 8 blocks, 2 rows: 7.1 ms -> 4.8 ms per token on this CPU; no change for large batches). The
products are oneDNN's bf16 kernels, as under autocast, with the same results for the contiguous
inputs the model feeds them (autocast adds a bias after rounding for strided inputs: one bf16
rounding apart there).

The arithmetic is autocast's (autocast computes linear layers in bf16 anyway, and the twin runs
under autocast for everything else); all that is not a linear weight (norms, embeddings, buffers)
is shared with the original model, not copied. Pixel heads are left as they are: the sampler
runs them in fp32 on CPUs (see `sampler.sample_pixel`). The cost: bf16 copies of the linear weights, half
the fp32 model's size, kept while the model lives.
"""

from __future__ import annotations

import copy
import weakref

import torch
import torch.nn as nn
import torch.nn.functional as F

from fractal_studio.model.pixel_head import PixelHead

_twins: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


class Bf16Linear(nn.Module):
    """Inference-only stand-in for an nn.Linear: bf16 weights cast (and packed, if possible) once.
    Returns bf16, as a linear layer under bf16 autocast does."""

    def __init__(self, linear: nn.Linear):
        super().__init__()
        self.in_features, self.out_features = linear.in_features, linear.out_features
        weight = linear.weight.detach().to(torch.bfloat16)
        self.bias = None if linear.bias is None else linear.bias.detach().to(torch.bfloat16)
        self.packed = _onednn_packed(weight)
        self.weight = weight if self.packed is None else None  # one copy only

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.to(torch.bfloat16)
        if self.packed is None:
            return F.linear(x, self.weight, self.bias)
        return torch.ops.mkldnn._linear_pointwise(x.contiguous(), self.packed, self.bias, "none", [], "")


def _onednn_packed(weight: torch.Tensor) -> torch.Tensor | None:
    """The weight in oneDNN's blocked layout, or None where this PyTorch build cannot do it."""
    if weight.device.type != "cpu" or not torch.backends.mkldnn.is_available():
        return None
    try:
        packed = torch.ops.mkldnn._reorder_linear_weight(weight, None)
        probe = torch.zeros(1, weight.shape[1], dtype=torch.bfloat16)
        torch.ops.mkldnn._linear_pointwise(probe, packed, None, "none", [], "")
        return packed
    except (AttributeError, RuntimeError):  # op missing from this build, or unsupported here
        return None


def bf16_linear_twin(model: nn.Module) -> nn.Module:
    """The model's twin (built on first use; rebuilt when a linear weight changed since)."""
    stamp = _weights_stamp(model)
    cached = _twins.get(model)
    if cached is not None and cached[0] == stamp:
        return cached[1]
    shared: dict[int, object] = {id(t): t for t in (*model.parameters(), *model.buffers())}
    twin = copy.deepcopy(model, shared)  # new modules over the same tensors
    _replace_linears(twin)
    _twins[model] = (stamp, twin)
    return twin


def _replace_linears(module: nn.Module) -> None:
    for name, child in module.named_children():
        if isinstance(child, nn.Linear):
            setattr(module, name, Bf16Linear(child))
        elif not isinstance(child, PixelHead):
            _replace_linears(child)


def _linears(model: nn.Module) -> list[nn.Linear]:
    return [module for module in model.modules() if isinstance(module, nn.Linear)]


def _weights_stamp(model: nn.Module) -> tuple:
    """Changes when a linear weight is replaced or modified in place (tensor version counters)."""
    return tuple((id(p), p._version) for linear in _linears(model)
                 for p in (linear.weight, linear.bias) if p is not None)
