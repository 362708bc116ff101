"""The fractal model: class embedding, a stack of AR/MAR levels and the per-pixel head.

Also the likelihood objective (`loss`, `bits_per_dim`), computed per image exactly as the paper's
evaluation does it: at every MAR level only masked patches are passed down; the objective is the
mean cross-entropy of every predicted pixel channel, plus each guiding-pixel head's mean
cross-entropy over the patch instances reaching its level.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn

from fractal_studio.model.ar import ARLevel
from fractal_studio.model.config import ModelConfig
from fractal_studio.model.layers import patchify
from fractal_studio.model.mar import MARLevel
from fractal_studio.model.pixel_head import PixelHead

LEVEL_TYPES = {"ar": ARLevel, "mar": MARLevel}
NUM_NEIGHBOUR_CONDS = 5


class FractalModel(nn.Module):
    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        top = config.levels[0].width
        self.class_emb = nn.Embedding(config.class_num, top)
        self.fake_latent = nn.Parameter(torch.zeros(1, top))  # the "no class" embedding
        nn.init.normal_(self.class_emb.weight, std=0.02)
        nn.init.normal_(self.fake_latent, std=0.02)
        self.levels = nn.ModuleList(self._build_level(i) for i in range(len(config.generators)))
        for index, level in enumerate(self.levels):
            if isinstance(level, MARLevel):
                level.conditions_below = self._conditions_read(index + 1)
        head = config.head
        self.head = PixelHead(config.levels[-2].width, head.width, head.depth, head.heads, config.r_weight)
        self.register_buffer("pixel_mean", torch.empty(0), persistent=False)
        self.register_buffer("pixel_std", torch.empty(0), persistent=False)
        self.init_computed_buffers()

    def init_computed_buffers(self, device=None) -> None:
        """(Re)builds the buffers that are computed rather than stored in weight files (pixel
        statistics, rotary tables): after building on the meta device, the loader calls this."""
        device = device or self.fake_latent.device
        self.pixel_mean = torch.tensor(self.config.pixel_mean, device=device).view(1, 3, 1, 1)
        self.pixel_std = torch.tensor(self.config.pixel_std, device=device).view(1, 3, 1, 1)
        for level in self.levels:
            if isinstance(level, ARLevel):
                level.init_rotary(device)

    def _conditions_read(self, index: int) -> int:
        """How many conditions level `index` reads per patch (the pixel head past the levels): a
        MAR level its `num_conds`, an AR level and the pixel head the first (middle) one."""
        below = self.levels[index] if index < len(self.levels) else None
        return below.num_conds if isinstance(below, MARLevel) else 1

    def _build_level(self, index: int) -> nn.Module:
        config = self.config
        level = config.levels[index]
        cond_width = config.levels[index - 1].width if index > 0 else level.width
        return LEVEL_TYPES[level.kind](
            seq_len=config.seq_len(index), patch=config.patch_size(index), cond_width=cond_width,
            width=level.width, depth=level.depth, heads=level.heads, num_conds=config.num_conds,
            guiding_pixel=config.guiding_pixel and index > 0, dropout=config.dropout,
        )

    # ----------------------------------------------------------------- pixels
    def normalize(self, images_u8: torch.Tensor) -> torch.Tensor:
        """uint8 [N, 3, H, W] -> the model's input space."""
        return (images_u8.float() / 255.0 - self.pixel_mean) / self.pixel_std

    def quantize(self, normalized: torch.Tensor) -> torch.Tensor:
        """The model's input space -> integer pixel values 0..255 (int64), channels on dim 1."""
        shape = (1, 3) + (1,) * (normalized.dim() - 2)
        values = normalized * self.pixel_std.view(shape) + self.pixel_mean.view(shape)
        return (values * 255).round().clamp(0, 255).long()

    def values_to_normalized(self, values: torch.Tensor) -> torch.Tensor:
        """Integer pixel values 0..255 [..., 3] (channels last) -> the model's input space."""
        return (values.float() / 255 - self.pixel_mean.flatten()) / self.pixel_std.flatten()

    # ----------------------------------------------------------------- conditioning
    def class_condition(self, labels: torch.Tensor | None, batch: int) -> torch.Tensor:
        """Class embeddings [B, C]; None (or label -1) gives the learned unconditional embedding."""
        unconditional = self.fake_latent.expand(batch, -1)
        if labels is None:
            return unconditional
        labels = torch.as_tensor(labels, device=self.fake_latent.device).long()
        known = (labels >= 0).unsqueeze(-1)
        embedded = self.class_emb(labels.clamp(min=0))
        return torch.where(known, embedded, unconditional)

    def top_conditions(self, class_embedding: torch.Tensor) -> list[torch.Tensor]:
        return [class_embedding] * NUM_NEIGHBOUR_CONDS

    # ----------------------------------------------------------------- likelihood
    def loss(self, images: torch.Tensor, labels: torch.Tensor | None = None, masks=None,
             unknown: torch.Tensor | None = None, per_pixel: bool = False) -> torch.Tensor:
        """Per-image objective [B] in nats per dimension.

        images: uint8 [B, 3, H, W]. labels: None = unconditional (fake latent). masks: None = random
        evaluation masks (in eval mode; training masks in train mode), "all" = every MAR token masked,
        or one bool/uint8 tensor [N_k, L_k] per MAR level in the paper's order (1 = masked).
        unknown: None = every pixel is to be generated (the paper), or bool [B, H, W], True where a
        pixel is unknown (an edit). Then, as in the sampler, only patches with an unknown pixel are
        masked or passed down, known pixels are context, and only unknown pixels are scored.
        In training mode labels are dropped with `label_drop_prob` (for guidance).
        per_pixel: instead, float [B, H, W]: each scored pixel's nats per dimension (the mean over
        R, G, B), NaN where a pixel was not scored; guiding-pixel terms are left out.
        """
        batch = images.shape[0]
        x = self.normalize(images.to(self.fake_latent.device))
        class_embedding = self.class_condition(labels, batch)
        if self.training and labels is not None:
            drop = torch.rand(batch, 1, device=x.device) < self.config.label_drop_prob
            class_embedding = torch.where(drop, self.fake_latent.expand(batch, -1), class_embedding)
        conds = self.top_conditions(class_embedding)
        owner = torch.arange(batch, device=x.device)  # which image each instance belongs to
        height, width = x.shape[-2:]
        # Where each pixel is (its index in the batch's pixels), carried down like the pixels; only
        # for a per-pixel answer (training never needs it).
        place = None
        if per_pixel:
            place = torch.arange(batch * height * width, device=x.device).view(batch, 1, height, width)
        total = torch.zeros(batch, device=x.device)
        region = None if unknown is None else torch.as_tensor(unknown, device=x.device).bool()
        mar_call = 0
        for level in self.levels:
            patches = patchify(x, level.patch)
            count, length = patches.shape[:2]
            region_patches = None if region is None else patchify(region.unsqueeze(1), level.patch)
            unknown_tokens = None if region_patches is None else region_patches.any(-1)  # [N, L]
            if level.kind == "mar":
                mask = self._level_mask(masks, mar_call, count, length, x.device, unknown_tokens)
                mar_call += 1
                guide = None
                if level.guiding_pixel:
                    guide = x.mean(dim=-1).mean(dim=-1)  # the authors' order (rounding at .5 ties)
                    guide_nll = level.guide_head.nll(conds[0], self.quantize(guide))
                    total = total + per_image_mean(guide_nll, owner, batch)
                out = level.predict(patches, mask, conds, guide)
                keep = mask.reshape(-1)
            else:
                out = level.predict(patches, conds)
                # Known patches are teacher-forced in an edit: only unknown ones are passed down.
                keep = torch.ones(count * length, dtype=torch.bool, device=x.device) \
                    if unknown_tokens is None else unknown_tokens.reshape(-1)
            conds = [c.reshape(count * length, -1)[keep] for c in out]
            x = patches.reshape(count * length, 3, level.patch, level.patch)[keep]
            if place is not None:
                place = patchify(place, level.patch).reshape(count * length, 1, level.patch,
                                                             level.patch)[keep]
            if region_patches is not None:
                region = region_patches.reshape(count * length, level.patch, level.patch)[keep]
            owner = owner.repeat_interleave(length)[keep]
        pixel_nll = self.head.nll(conds[0], self.quantize(x.reshape(-1, 3)))
        if region is not None:  # (a known pixel can reach the head only below an AR level of 1 pixel)
            scored = region.reshape(-1)
            pixel_nll, owner = pixel_nll[scored], owner[scored]
            place = None if place is None else place.reshape(-1)[scored]
        if per_pixel:
            costs = torch.full((batch * height * width,), float("nan"), device=x.device)
            return costs.index_put_((place.reshape(-1),), pixel_nll.float()).view(batch, height, width)
        return total + per_image_mean(pixel_nll, owner, batch)

    def _level_mask(self, masks, call: int, count: int, length: int, device,
                    unknown_tokens: torch.Tensor | None = None) -> torch.Tensor:
        if isinstance(masks, str):
            if masks != "all":
                raise ValueError(f"masks must be None, 'all' or a list of tensors, not {masks!r}")
            return torch.ones(count, length, dtype=torch.bool, device=device)
        if masks is not None:
            if call >= len(masks):
                raise ValueError(f"{len(masks)} masks given but the model has more MAR levels")
            mask = torch.as_tensor(masks[call], device=device).bool()
            if mask.shape != (count, length):
                raise ValueError(f"mask {call} has shape {tuple(mask.shape)}, expected {(count, length)}")
            return mask
        if unknown_tokens is not None:
            if self.training:
                return training_mask(count, length, device, unknown_tokens)
            return evaluation_mask_within(unknown_tokens)
        if self.training:
            return training_mask(count, length, device)
        return evaluation_mask(count, length, device)

    @torch.no_grad()
    def bits_per_dim(self, images: torch.Tensor, labels: torch.Tensor | None = None,
                     samples: int = 1) -> torch.Tensor:
        """Per-image bits/dim, averaging `samples` passes with random evaluation masks (as the paper)."""
        if self.config.guiding_pixel:
            raise ValueError("bits/dim is defined for models without guiding pixels")
        total = sum(self.loss(images, labels) for _ in range(samples))
        return total / samples / math.log(2)


def per_image_mean(values: torch.Tensor, owner: torch.Tensor, batch: int) -> torch.Tensor:
    """Mean of `values` over the instances of each image ([batch]; 0 where an image has none)."""
    sums = torch.zeros(batch, device=values.device, dtype=values.dtype).index_add_(0, owner, values)
    counts = torch.zeros(batch, device=values.device, dtype=values.dtype).index_add_(
        0, owner, torch.ones_like(values))
    return sums / counts.clamp(min=1)


def evaluation_mask(count: int, length: int, device) -> torch.Tensor:
    """The paper's likelihood masks: the same number (1..L, uniform) of random tokens per instance."""
    masked = int(torch.randint(1, length + 1, ()).item())
    return random_subset_mask(count, length, torch.full((count,), masked), device)


def evaluation_mask_within(unknown_tokens: torch.Tensor) -> torch.Tensor:
    """Likelihood masks for an edit: per instance, a uniform number (1..U) of its U unknown tokens,
    the tokens that a generation would have predicted at one of its steps."""
    available = unknown_tokens.sum(1)
    masked = (torch.rand(available.shape, device=available.device) * available).floor().long() + 1
    masked = torch.minimum(masked, available)
    return random_subset_mask(*unknown_tokens.shape, masked, unknown_tokens.device, unknown_tokens)


def training_mask(count: int, length: int, device,
                  unknown_tokens: torch.Tensor | None = None) -> torch.Tensor:
    """MAR's training masks: a masking rate per instance from a normal(1, 0.25) truncated to [0, 1].

    With `unknown_tokens` (an edit) the rate applies to the instance's unknown tokens (at least one
    is masked) and known tokens are never masked: as in the sampler, where the unknown tokens are
    spread over the steps and the tokens of earlier steps are context."""
    rates = training_masking_rates(count)
    if unknown_tokens is None:
        return random_subset_mask(count, length, torch.ceil(rates * length).long(), device)
    available = unknown_tokens.sum(1).cpu()
    masked = torch.minimum(torch.ceil(rates * available).long().clamp(min=1), available)
    return random_subset_mask(count, length, masked, device, unknown_tokens)


def training_masking_rates(count: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """[count] shares of masked tokens as MAR trains: a normal(1, 0.25) truncated to [0, 1]."""
    normal = torch.distributions.Normal(1.0, 0.25)
    low = normal.cdf(torch.tensor(0.0))
    uniform = low + (0.5 - low) * torch.rand(count, generator=generator)
    return normal.icdf(uniform).clamp(0.0, 1.0)


def random_subset_mask(count: int, length: int, masked: torch.Tensor, device,
                       allowed: torch.Tensor | None = None) -> torch.Tensor:
    """`masked[i]` random tokens of each instance, drawn among the `allowed` ones (default: all)."""
    priority = torch.rand(count, length, device=device)
    if allowed is not None:  # disallowed tokens rank after every allowed one
        priority = torch.where(allowed, priority, torch.full_like(priority, 2.0))
    ranks = priority.argsort(dim=1).argsort(dim=1)
    return ranks < masked.to(device).unsqueeze(1)
