"""Transformer building blocks shared by every level (one copy of each, used everywhere)."""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

LN_EPS = 1e-6


def layer_norm(width: int) -> nn.LayerNorm:
    return nn.LayerNorm(width, eps=LN_EPS)


def attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, causal: bool = False,
              mask: torch.Tensor | None = None, dropout: float = 0.0) -> torch.Tensor:
    """Softmax attention over [B, heads, N, head_dim], fused by PyTorch (flash / memory-efficient
    kernels where available). In fp32 it matches the paper's explicit fp32 attention; under bf16
    autocast it runs in bf16 (autocast's rule for attention, on CPUs as on GPUs; sampling only:
    the pixel heads, whose outputs are the sampling distribution, run without autocast)."""
    out_dtype = torch.promote_types(q.dtype, v.dtype)
    if k.shape[-2] == 1 and mask is None and not dropout:
        # The softmax of a single score is exactly 1: every query gets the value as it is. The
        # first token of each decoding (a pixel head's condition) costs no kernel call.
        return v.to(out_dtype).expand(*q.shape[:-1], v.shape[-1])
    q, k, v = q.to(out_dtype), k.to(out_dtype), v.to(out_dtype)
    out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=dropout,
                                         is_causal=causal and mask is None)
    return out.to(out_dtype)


class MLP(nn.Module):
    """Two-layer GELU MLP (names fc1/fc2 as in ViT code)."""

    def __init__(self, width: int, hidden: int, dropout: float = 0.0):
        super().__init__()
        self.fc1 = nn.Linear(width, hidden)
        self.fc2 = nn.Linear(hidden, width)
        self.dropout = dropout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not (self.training and self.dropout):  # sampling: no dropout calls at all (hot path)
            return self.fc2(F.gelu(self.fc1(x)))
        x = F.dropout(F.gelu(self.fc1(x)), self.dropout, True)
        return F.dropout(self.fc2(x), self.dropout, True)


class SelfAttention(nn.Module):
    """Multi-head self-attention with a fused qkv projection; optionally causal, with a KV cache."""

    def __init__(self, width: int, heads: int, dropout: float = 0.0):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(width, width * 3)
        self.proj = nn.Linear(width, width)
        self.dropout = dropout

    def forward(self, x: torch.Tensor, causal: bool = False, cache: KVCache | None = None,
                queries: torch.Tensor | None = None) -> torch.Tensor:
        """queries: long [B, M], the tokens whose outputs are wanted (default: all); every token
        is still attended to, so each wanted output is what the full computation gives."""
        batch, tokens, width = x.shape
        # No cast before attention: under bf16 autocast it computes in bf16 anyway, and a cast to
        # fp32 here only added copies (four per block: autocast casts q, k and v back).
        qkv = self.qkv(x)
        out_dtype = qkv.dtype
        q, k, v = qkv.reshape(batch, tokens, 3, self.heads, -1).permute(2, 0, 3, 1, 4)
        if queries is not None:
            q = q.gather(2, queries[:, None, :, None].expand(-1, q.shape[1], -1, q.shape[3]))
            tokens = queries.shape[1]
        mask = None
        if cache is not None:
            k, v = cache.append(k, v)
            mask = causal_mask_for_new_tokens(tokens, k.shape[2], x.device) if causal else None
            causal = False
        dropout = self.dropout if self.training else 0.0
        out = attention(q, k, v, causal=causal, mask=mask, dropout=dropout)
        # Heads back side by side and in the layer's dtype, in one copy.
        out = out.transpose(1, 2).to(out_dtype, memory_format=torch.contiguous_format)
        out = self.proj(out.reshape(batch, tokens, width))
        return F.dropout(out, dropout, True) if dropout else out


def causal_mask_for_new_tokens(new: int, total: int, device) -> torch.Tensor | None:
    """Boolean mask letting the `new` last tokens of `total` see themselves and everything before."""
    if new == 1:
        return None  # a single new query may see every cached key
    return torch.ones(new, total, dtype=torch.bool, device=device).tril(diagonal=total - new)


class Block(nn.Module):
    """Pre-norm transformer block: x + attn(norm1(x)), then x + mlp(norm2(x))."""

    def __init__(self, width: int, heads: int, dropout: float = 0.0):
        super().__init__()
        self.norm1 = layer_norm(width)
        self.attn = SelfAttention(width, heads, dropout)
        self.norm2 = layer_norm(width)
        self.mlp = MLP(width, width * 4, dropout)

    def forward(self, x: torch.Tensor, causal: bool = False, cache: KVCache | None = None,
                queries: torch.Tensor | None = None) -> torch.Tensor:
        """queries: long [B, M], computes only these tokens' outputs ([B, M, width]); a level's
        last block needs no more than the tokens whose outputs are read (see MARLevel.predict_patches)."""
        attended = self.attn(self.norm1(x), causal=causal, cache=cache, queries=queries)
        if queries is not None:
            x = x.gather(1, queries.unsqueeze(-1).expand(-1, -1, x.shape[-1]))
        x = x + attended
        return x + self.mlp(self.norm2(x))


class KVCache:
    """Keys and values of the tokens seen so far, for one attention layer during incremental decoding.

    Preallocated once per run (gpt-fast style) so decoding does not reallocate every step.
    """

    def __init__(self, batch: int, heads: int, max_tokens: int, head_dim: int, device, dtype):
        self.keys = torch.zeros(batch, heads, max_tokens, head_dim, device=device, dtype=dtype)
        self.values = torch.zeros_like(self.keys)
        self.length = 0

    def append(self, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        end = self.length + k.shape[2]
        self.keys[:, :, self.length:end] = k
        self.values[:, :, self.length:end] = v
        self.length = end
        return self.keys[:, :, :end], self.values[:, :, :end]


def init_weights(module: nn.Module) -> None:
    """Xavier-uniform linears with zero bias, unit LayerNorms (the initialisation of ViT/JAX)."""
    if isinstance(module, nn.Linear):
        nn.init.xavier_uniform_(module.weight)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.LayerNorm):
        nn.init.ones_(module.weight)
        nn.init.zeros_(module.bias)


def patchify(images: torch.Tensor, patch: int) -> torch.Tensor:
    """[N, 3, H, W] -> [N, (H/p)*(W/p), 3*p*p], patches in raster order, channels-major inside a patch."""
    n, c, h, w = images.shape
    x = images.reshape(n, c, h // patch, patch, w // patch, patch)
    x = x.permute(0, 2, 4, 1, 3, 5)
    return x.reshape(n, (h // patch) * (w // patch), c * patch * patch)


def unpatchify(patches: torch.Tensor, patch: int, side: int) -> torch.Tensor:
    """Inverse of `patchify` for a square image of `side` pixels."""
    n = patches.shape[0]
    grid = side // patch
    x = patches.reshape(n, grid, grid, 3, patch, patch).permute(0, 3, 1, 4, 2, 5)
    return x.reshape(n, 3, side, side)
