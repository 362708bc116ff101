"""The surprise map: how many bits the model spends on each pixel given what is around it.

A likelihood model can say where an image is unlike what it expects: dust, blemishes, stray objects,
a pasted patch. For every pixel we want its cost given its context. Per window of the model's size:
the top level's tokens are split into four groups by a random 2x2 colouring (each token's group
differs from its neighbours' as often as chance allows); in each of four passes one group is
masked, so it is predicted from the other three quarters of the window, and the levels below
predict all of a masked token's content in one step (an AR level: exactly, teacher-forced). The
four passes score every pixel once; `orders` repeats with new colourings and averages. This is an
honest code length (one particular order of generation), not the paper's estimate averaged over
every order: it says where the model is surprised, which is what the map is for.

Images larger than a window are covered by windows overlapping by half, each pixel's value a
weighted mean that favours windows in which it lies away from the edge (so no seams); a working
scale like the editor's keeps large photos to a few hundred windows.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import cv2
import numpy as np
import torch

from fractal_studio.editing.planning import parse_work_scale
from fractal_studio.model.fractal import training_masking_rates

MAX_WORKING_SIDE_WINDOWS = 8  # `auto`: the working image's long side is at most this many windows
WINDOW_BATCH = 16


@torch.no_grad()
def window_bits(model, windows: np.ndarray, orders: int = 1, seed: int = 0,
                class_id: int | None = None) -> np.ndarray:
    """float32 [N, R, R]: bits per dimension of each pixel of each window (uint8 [N, R, R, 3]),
    asked of the model in the way it learnt: a quarter of the window given the rest for a model
    that learnt edit-shaped holes, the paper's share of masked tokens for one that learnt those."""
    config = model.config
    device = model.fake_latent.device
    images = torch.from_numpy(np.ascontiguousarray(windows)).permute(0, 3, 1, 2).to(device)
    count = images.shape[0]
    grid = config.resolution // config.patch_sizes[0]
    labels = None if class_id is None else torch.full((count,), int(class_id), device=device)
    generator = torch.Generator().manual_seed(seed)
    draws = _quarter_masks if config.trained_masks != "paper" else _paper_masks
    total = torch.zeros(count, config.resolution, config.resolution, device=device)
    scored = torch.zeros_like(total)
    for top in draws(count, grid * grid, orders, generator):
        costs = model.loss(images, labels, masks=_level_masks(config, top.to(device)), per_pixel=True)
        seen = torch.isfinite(costs)
        total += torch.where(seen, costs, 0.0)
        scored += seen
    return (total / scored.clamp(min=1) / math.log(2)).cpu().numpy().astype(np.float32)


def _quarter_masks(count: int, length: int, orders: int, generator: torch.Generator):
    """Top-level masks [count, length] for a model that learnt holes: per order, four passes that
    each mask a quarter of the tokens (a 2x2 colouring), so every token is scored once given the
    three quarters around it."""
    grid = math.isqrt(length)
    for _ in range(orders):
        groups = _colouring(grid, generator)
        for group in range(4):
            yield (groups == group).expand(count, -1)


def _paper_masks(count: int, length: int, orders: int, generator: torch.Generator):
    """Top-level masks [count, length] for a model that learnt the paper's masks: each pass masks a
    share of the tokens drawn as in its training (a normal(1, 0.25) truncated to [0, 1]), so the
    model predicts them from the few known ones as it learnt to. The tokens scored least so far are
    masked first, so that four passes per order score every token about equally often."""
    scored = torch.zeros(count, length)
    for _ in range(4 * orders):
        masked = torch.ceil(training_masking_rates(count, generator) * length).long().clamp(1, length)
        priority = scored + torch.rand(count, length, generator=generator)
        ranks = priority.argsort(dim=1).argsort(dim=1)
        mask = ranks < masked[:, None]
        scored += mask
        yield mask


def _colouring(grid: int, generator: torch.Generator) -> torch.Tensor:
    """[grid*grid] group 0..3 per top-level token: a 2x2 tiling shifted at random, so that each
    token's neighbours are in other groups, and which group comes first differs between orders."""
    dy, dx = (int(v) for v in torch.randint(0, 2, (2,), generator=generator))
    rows = (torch.arange(grid) + dy) % 2
    cols = (torch.arange(grid) + dx) % 2
    tiles = (rows[:, None] * 2 + cols[None, :]).reshape(-1)
    relabel = torch.randperm(4, generator=generator)
    return relabel[tiles]


def _level_masks(config, top: torch.Tensor) -> list[torch.Tensor]:
    """The masks of every MAR level: `top` [count, length] at the top level, everything below (all
    of a masked token's content in one step)."""
    masks, instances = [], top.shape[0]
    for index, level in enumerate(config.generators):
        length = config.seq_len(index)
        if level.kind == "mar":
            mask = top if index == 0 else torch.ones(instances, length, dtype=torch.bool, device=top.device)
            masks.append(mask)
            instances = int(mask.sum())
        else:
            instances *= length
    return masks


def surprise_map(model, image: np.ndarray, orders: int = 1, work_scale: float | str = "auto", seed: int = 0,
                 class_id: int | None = None,
                 progress: Callable[[float], None] | None = None) -> tuple[np.ndarray, float]:
    """(float32 [H, W] bits per dimension of each pixel, the working scale used) for an RGB image."""
    side = model.config.resolution
    height, width = image.shape[:2]
    option = parse_work_scale(work_scale)
    if option == "auto":
        scale = max(1.0, max(height, width) / (MAX_WORKING_SIDE_WINDOWS * side))
    else:
        scale = 1.0 if option == "native" else float(option)
    size = (max(side, round(width / scale)), max(side, round(height / scale)))
    if size == (width, height):
        work = image
    else:
        shrink = size[0] <= width and size[1] <= height
        work = cv2.resize(image, size, interpolation=cv2.INTER_AREA if shrink else cv2.INTER_CUBIC)
    starts_y, starts_x = _starts(size[1], side), _starts(size[0], side)
    corners = [(y, x) for y in starts_y for x in starts_x]
    weight = _window_weight(side)
    total = np.zeros(work.shape[:2], np.float64)
    weights = np.zeros(work.shape[:2], np.float64)
    for first in range(0, len(corners), WINDOW_BATCH):
        batch = corners[first:first + WINDOW_BATCH]
        crops = np.stack([work[y:y + side, x:x + side] for y, x in batch])
        bits = window_bits(model, crops, orders, seed=seed + first, class_id=class_id)
        for (y, x), values in zip(batch, bits, strict=True):
            total[y:y + side, x:x + side] += weight * values
            weights[y:y + side, x:x + side] += weight
        if progress is not None:
            progress(min(1.0, (first + len(batch)) / len(corners)))
    bits = (total / np.maximum(weights, 1e-12)).astype(np.float32)
    if bits.shape != (height, width):
        bits = cv2.resize(bits, (width, height), interpolation=cv2.INTER_LINEAR)
    return bits, scale


def _starts(length: int, side: int) -> list[int]:
    """Window origins along an axis: every half window, the last one flush with the end."""
    if length <= side:
        return [0]
    step = side // 2
    starts = list(range(0, length - side, step))
    return starts + [length - side]


def _window_weight(side: int) -> np.ndarray:
    """Highest in the middle of a window, low (never zero) at its edge: a pixel's value comes
    mostly from the windows that see context on all its sides."""
    ramp = np.minimum(np.arange(side) + 1, side - np.arange(side)).astype(np.float64)
    ramp /= ramp.max()
    return np.outer(ramp, ramp)
