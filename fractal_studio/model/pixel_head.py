"""The per-pixel head: a tiny causal transformer over (condition, R, G, B) with tied codebook logits.

Token 0 is the projected condition; tokens 1..3 embed the already known R, G and B values. The
output at position i gives the logits of channel i (R from the condition alone, G after R, B after
R and G). Logits are `h @ codebook.T + bias`, the codebook being the channel's input embedding.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from fractal_studio.model.layers import Block, KVCache, init_weights, layer_norm

CHANNELS = 3
LEVELS = 256


class PixelHead(nn.Module):
    def __init__(self, cond_width: int, width: int, depth: int, heads: int, r_weight: float = 1.0):
        super().__init__()
        self.r_weight = r_weight
        self.cond_proj = nn.Linear(cond_width, width)
        self.codebooks = nn.ModuleList([nn.Embedding(LEVELS, width) for _ in range(CHANNELS)])
        self.logit_bias = nn.ParameterList([nn.Parameter(torch.zeros(1, LEVELS)) for _ in range(CHANNELS)])
        self.ln = layer_norm(width)
        self.blocks = nn.ModuleList([Block(width, heads) for _ in range(depth)])
        self.norm = layer_norm(width)
        self.apply(init_weights)
        for codebook in self.codebooks:
            nn.init.normal_(codebook.weight, std=0.02)

    def logits(self, cond: torch.Tensor, values: torch.Tensor, channels: int = CHANNELS) -> torch.Tensor:
        """Logits [N, channels, 256] of the first `channels` channels given the earlier ones.

        cond: [N, cond_width]; values: int64 [N, >= channels - 1] pixel values 0..255 (teacher forcing).
        """
        tokens = [self.cond_proj(cond).unsqueeze(1)]
        for channel in range(channels - 1):
            tokens.append(self.codebooks[channel](values[:, channel]).unsqueeze(1))
        x = self.ln(torch.cat(tokens, dim=1))
        for block in self.blocks:
            x = block(x, causal=True)
        x = self.norm(x)
        return torch.stack(
            [self._channel_logits(x[:, c], c) for c in range(channels)], dim=1
        )

    # ------------------------------------------------------------ incremental decoding (sampling)
    def new_caches(self, batch: int, device, dtype) -> list[KVCache]:
        width = self.ln.normalized_shape[0]
        heads = self.blocks[0].attn.heads if len(self.blocks) else 1
        return [KVCache(batch, heads, CHANNELS, width // heads, device, dtype) for _ in self.blocks]

    def condition_token(self, cond: torch.Tensor) -> torch.Tensor:
        return self.cond_proj(cond).unsqueeze(1)

    def value_token(self, channel: int, values: torch.Tensor) -> torch.Tensor:
        return self.codebooks[channel](values).unsqueeze(1)

    def next_logits(self, token: torch.Tensor, channel: int, caches: list[KVCache]) -> torch.Tensor:
        """Logits [N, 256] of `channel`, feeding one new token (the condition, then R, then G)
        through the KV cache: each channel costs one token instead of re-running the prefix."""
        x = self.ln(token)
        for block, cache in zip(self.blocks, caches):
            x = block(x, causal=True, cache=cache)
        return self._channel_logits(self.norm(x)[:, 0], channel)

    def _channel_logits(self, hidden: torch.Tensor, channel: int) -> torch.Tensor:
        # Computed in float32 even under autocast: these are the sampling distribution.
        with torch.autocast(device_type=hidden.device.type, enabled=False):
            weight = self.codebooks[channel].weight.float()
            return hidden.float() @ weight.t() + self.logit_bias[channel].float()

    def nll(self, cond: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
        """Per-pixel cross-entropy [N]: the mean over R, G, B in eval mode, R weighted in training."""
        logits = self.logits(cond, values)
        losses = F.cross_entropy(logits.reshape(-1, LEVELS), values.reshape(-1), reduction="none")
        losses = losses.reshape(-1, CHANNELS)
        if self.training:
            weights = torch.tensor([self.r_weight, 1.0, 1.0], device=losses.device)
            return (losses * weights).sum(-1) / weights.sum()
        return losses.mean(-1)
