"""The per-pixel head's last step: classifier-free guidance on raw logits, then one draw per row."""

from __future__ import annotations

import math

import torch


def guided_logits(cond_logits: torch.Tensor, uncond_logits: torch.Tensor | None, temperature: float,
                  cfg: float, filter_threshold: float) -> torch.Tensor:
    """Logits to sample from.

    Temperature divides the logits (the paper's code multiplies by its own "temperature", so its
    1.1 is 1/1.1 here). With guidance, values the conditional model finds very unlikely (probability
    below `filter_threshold`) are not allowed to be boosted by the unconditional logits: there, the
    unconditional logit is raised to the conditional one, shifted to the unconditional maximum.
    """
    cond_logits = _tempered(cond_logits, temperature)
    if uncond_logits is None:
        return cond_logits
    uncond_logits = _tempered(uncond_logits, temperature)
    unlikely = torch.softmax(cond_logits, dim=-1) < filter_threshold
    shifted = (cond_logits - cond_logits.max(dim=-1, keepdim=True).values
               + uncond_logits.max(dim=-1, keepdim=True).values)
    uncond_logits = torch.where(unlikely, torch.maximum(uncond_logits, shifted), uncond_logits)
    return uncond_logits + cfg * (cond_logits - uncond_logits)


def _tempered(logits: torch.Tensor, temperature: float) -> torch.Tensor:
    # Dividing by 1 changes nothing: at the usual temperature the head's three draws per pixel
    # save the two divisions (a kernel call each).
    logits = logits.float()
    return logits if temperature == 1.0 else logits / temperature


def guidance_at(cfg: float, schedule: str, done_fraction: float) -> float:
    """Guidance scale for a step: constant, or rising linearly from 1 to `cfg` with the share done."""
    if schedule == "linear":
        return 1.0 + (cfg - 1.0) * done_fraction
    return cfg


def draw_categorical(logits: torch.Tensor, rng: torch.Generator, spread: float = 1.0) -> torch.Tensor:
    """One draw per row of softmax(`logits`) [N, K] -> int64 [N], by inverting the CDF.

    spread 1: an exact draw, the same distribution as `torch.multinomial` (~15x faster on CPU for
    256 values: one uniform number per row where multinomial draws an exponential for every value).
    spread < 1: the draw comes from the central `spread` of the probability mass (the quantiles
    0.5 ± spread/2), and 0 gives the median. Pixel values are ordered, so this keeps each pixel near
    the middle of what the model expects. A lower temperature sharpens the largest peak instead,
    which for an unsure pixel is often a spike at 0 or 255 (clipped highlights and shadows): flat
    black or white blocks. Same random numbers for every spread, so a seed keeps its layout.
    """
    probs = torch.softmax(logits.float(), dim=-1)
    cdf = probs.cumsum(dim=-1)
    total = cdf[:, -1:]
    uniform = torch.rand(total.shape, generator=rng, device=logits.device, dtype=cdf.dtype)
    if spread != 1.0:
        uniform = 0.5 + (uniform - 0.5) * spread
    index = torch.searchsorted(cdf, uniform * total, right=True)
    # Rounding can put the target at (or past) the total: fall back to the last value with any
    # probability, never to a trailing impossible one (e.g. removed by the guidance filter).
    last_possible = (cdf < total).sum(dim=-1, keepdim=True)
    return torch.minimum(index, last_possible).flatten()


def sampled_entropy_bits(logits: torch.Tensor, spread: float = 1.0) -> torch.Tensor:
    """The entropy in bits [N] of the distribution `draw_categorical(logits, ..., spread)` draws
    from: softmax(`logits`) [N, K] itself at spread 1; at spread < 1, that distribution cut to
    the central `spread` of its mass (quantiles 0.5 ± spread/2) and renormalised, so spread 0 (the
    median, a certain value) gives 0."""
    probs = torch.softmax(logits.float(), dim=-1)
    if spread != 1.0:
        if spread <= 0.0:
            return torch.zeros(probs.shape[0], device=probs.device)
        cdf = probs.cumsum(dim=-1)
        before = cdf - probs
        low, high = 0.5 - spread / 2, 0.5 + spread / 2
        total = cdf[:, -1:]
        probs = (torch.minimum(cdf, total * high) - torch.maximum(before, total * low)).clamp(min=0)
        probs = probs / probs.sum(dim=-1, keepdim=True)
    return torch.special.xlogy(probs, probs).sum(dim=-1) * (-1.0 / math.log(2.0))
