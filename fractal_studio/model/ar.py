"""AR level: a causal (raster-order) transformer over the patches of its image.

Llama-style blocks (RMSNorm, SwiGLU, no biases) with a 2-D rotary embedding on queries and keys
plus learned absolute positions. Sequence: [condition, patch 0, ..., patch L-1]; the output at
position t is the condition for patch t. The condition token gets a rotary angle table of zeros, so
its query and key are zero after the rotation (that is how the published weights were trained).
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from fractal_studio.model.layers import (
    KVCache,
    attention,
    causal_mask_for_new_tokens,
    init_weights,
    layer_norm,
)

ROPE_BASE = 10000.0
RMS_EPS = 1e-5


def swiglu_hidden(width: int, multiple: int = 256) -> int:
    hidden = int(2 * (4 * width) / 3)
    return -(-hidden // multiple) * multiple


def rotary_table_2d(grid: int, head_dim: int, base: float = ROPE_BASE) -> torch.Tensor:
    """[1 + grid*grid, head_dim/2, 2] (cos, sin): half the pairs rotate with the row, half with the column."""
    quarter = head_dim // 4
    freqs = 1.0 / (base ** (torch.arange(0, head_dim // 2, 2)[:quarter].float() / (head_dim // 2)))
    angles_1d = torch.outer(torch.arange(grid).float(), freqs)  # [grid, quarter]
    rows = angles_1d[:, None, :].expand(grid, grid, quarter)
    cols = angles_1d[None, :, :].expand(grid, grid, quarter)
    angles = torch.cat([rows, cols], dim=-1).reshape(grid * grid, 2 * quarter)
    table = torch.stack([angles.cos(), angles.sin()], dim=-1)
    return torch.cat([torch.zeros(1, 2 * quarter, 2), table])  # condition token: all zeros


def apply_rotary(x: torch.Tensor, table: torch.Tensor) -> torch.Tensor:
    """Rotates consecutive pairs of x [B, T, heads, head_dim] by the angles in table [T, head_dim/2, 2]."""
    pairs = x.float().reshape(*x.shape[:-1], -1, 2)
    cos = table[None, :, None, :, 0]
    sin = table[None, :, None, :, 1]
    rotated = torch.stack([pairs[..., 0] * cos - pairs[..., 1] * sin,
                           pairs[..., 1] * cos + pairs[..., 0] * sin], dim=-1)
    return rotated.flatten(3).type_as(x)


class RMSNorm(nn.Module):
    def __init__(self, width: int, eps: float = RMS_EPS):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(width))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        xf = x.float()
        return (xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + self.eps)).type_as(x) * self.weight


class RotaryAttention(nn.Module):
    def __init__(self, width: int, heads: int, dropout: float):
        super().__init__()
        self.heads = heads
        self.wqkv = nn.Linear(width, 3 * width, bias=False)
        self.wo = nn.Linear(width, width, bias=False)
        self.dropout = dropout

    def forward(self, x: torch.Tensor, table: torch.Tensor, cache: KVCache | None) -> torch.Tensor:
        batch, tokens, width = x.shape
        q, k, v = self.wqkv(x).reshape(batch, tokens, 3, self.heads, -1).unbind(2)
        q, k = apply_rotary(q, table), apply_rotary(k, table)
        q, k, v = (t.transpose(1, 2) for t in (q, k, v))
        if cache is None:
            out = attention(q, k, v, causal=True)
        else:
            k, v = cache.append(k, v)
            out = attention(q, k, v, mask=causal_mask_for_new_tokens(tokens, k.shape[2], x.device))
        out = self.wo(out.transpose(1, 2).reshape(batch, tokens, width))
        return F.dropout(out, self.dropout, True) if self.training and self.dropout else out


class SwiGLU(nn.Module):
    def __init__(self, width: int, dropout: float):
        super().__init__()
        hidden = swiglu_hidden(width)
        self.w1 = nn.Linear(width, hidden, bias=False)
        self.w3 = nn.Linear(width, hidden, bias=False)
        self.w2 = nn.Linear(hidden, width, bias=False)
        self.dropout = dropout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.w2(F.silu(self.w1(x)) * self.w3(x))
        return F.dropout(out, self.dropout, True) if self.training and self.dropout else out


class ARBlock(nn.Module):
    def __init__(self, width: int, heads: int, dropout: float):
        super().__init__()
        self.attention_norm = RMSNorm(width)
        self.attention = RotaryAttention(width, heads, dropout)
        self.ffn_norm = RMSNorm(width)
        self.feed_forward = SwiGLU(width, dropout)

    def forward(self, x, table, cache=None):
        x = x + self.attention(self.attention_norm(x), table, cache)
        return x + self.feed_forward(self.ffn_norm(x))


class ARLevel(nn.Module):
    kind = "ar"

    def __init__(self, seq_len: int, patch: int, cond_width: int, width: int, depth: int, heads: int,
                 dropout: float = 0.0, **_unused):
        super().__init__()
        self.seq_len = seq_len
        self.patch = patch
        self.heads = heads
        self.grid = int(round(seq_len ** 0.5))
        self.patch_emb = nn.Linear(3 * patch * patch, width)
        self.patch_emb_ln = layer_norm(width)
        self.pos_embed_learned = nn.Parameter(torch.zeros(1, seq_len + 1, width))
        self.cond_emb = nn.Linear(cond_width, width)
        self.blocks = nn.ModuleList([ARBlock(width, heads, dropout) for _ in range(depth)])
        self.norm = layer_norm(width)
        self.register_buffer("rotary", torch.empty(0), persistent=False)
        self.init_rotary()
        self.apply(init_weights)
        nn.init.normal_(self.pos_embed_learned, std=0.02)

    def init_rotary(self, device=None) -> None:
        """The rotary table is computed, not stored in weight files."""
        width = self.pos_embed_learned.shape[-1]
        self.rotary = rotary_table_2d(self.grid, width // self.heads).to(device or self.rotary.device)

    def embed(self, cond: torch.Tensor, patches: torch.Tensor, start: int) -> torch.Tensor:
        """Input tokens for positions start.. : the condition at 0, then patch t at t + 1."""
        tokens = self.patch_emb(patches)
        if start == 0:
            tokens = torch.cat([self.cond_emb(cond).unsqueeze(1), tokens], dim=1)
        end = start + tokens.shape[1]
        return self.patch_emb_ln(tokens + self.pos_embed_learned[:, start:end])

    def run(self, x: torch.Tensor, start: int, caches: list[KVCache] | None) -> torch.Tensor:
        table = self.rotary[start:start + x.shape[1]]
        for index, block in enumerate(self.blocks):
            x = block(x, table, None if caches is None else caches[index])
        return self.norm(x)

    def predict(self, patches: torch.Tensor, conds: list[torch.Tensor]) -> list[torch.Tensor]:
        """Teacher-forced conditions for every patch: [N, seq_len, width] (training and likelihood)."""
        x = self.embed(conds[0], patches[:, :-1], start=0)
        return [self.run(x, 0, None)]

    def new_caches(self, batch: int, device, dtype) -> list[KVCache]:
        width = self.pos_embed_learned.shape[-1]
        return [KVCache(batch, self.heads, self.seq_len, width // self.heads, device, dtype)
                for _ in self.blocks]

    def step(self, cond: torch.Tensor, patches: torch.Tensor, start: int,
             caches: list[KVCache]) -> torch.Tensor:
        """Feeds positions start.. (the condition if start is 0, then `patches`) through the KV cache
        and returns the output of the last one: the condition for patch start + len(patches)."""
        x = self.embed(cond, patches, start)
        return self.run(x, start, caches)[:, -1]
