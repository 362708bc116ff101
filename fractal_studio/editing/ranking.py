"""Ranking a run's candidates by the model's own likelihood of their fill.

A likelihood model can say how probable a fill is given what is around it: the bits per generated
R, G, B value (the objective restricted to the unknown pixels, with the known ones as context; for
MAR levels averaged over random masking orders). Candidates are shown best first. Where an edit
ran in several windows each window's fill counts by its share of the generated pixels.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from fractal_studio.geometry import Rect

RANKING_ORDERS = 2  # masking orders averaged per window (MAR); AR levels are exact


@torch.no_grad()
def fill_bits(model, canvases: list[np.ndarray], generated: np.ndarray, windows: list[Rect],
              seed: int = 0, orders: int = RANKING_ORDERS, class_id: int | None = None) -> list[float]:
    """Bits per generated value of each candidate. canvases: uint8 [H, W, 3] each, at the model's
    working scale; generated: bool [H, W], the pixels the run generated; windows: where the model
    ran (the same coordinates), each the model's resolution; class_id: the class the run was asked
    for (None: unconditional). A class edit's fills are scored as that class's: a fill that ignores
    the class costs more bits there than one that draws it."""
    device = model.fake_latent.device
    passes = orders if any(level.kind == "mar" for level in model.config.generators) else 1
    labels = None if class_id is None else torch.full((len(canvases),), int(class_id), device=device)
    total = np.zeros(len(canvases))
    weight = 0
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(seed)
        claimed = np.zeros_like(generated)
        for window in windows:
            rows, cols = window.slices
            unknown = generated[rows, cols] & ~claimed[rows, cols]  # each pixel counts once
            count = int(unknown.sum())
            if not count:
                continue
            claimed[rows, cols] |= unknown
            crops = np.stack([canvas[rows, cols] for canvas in canvases])
            images = torch.from_numpy(crops).permute(0, 3, 1, 2).contiguous().to(device)
            mask = torch.from_numpy(unknown).to(device).unsqueeze(0).expand(len(canvases), -1, -1)
            nats = sum(model.loss(images, labels, unknown=mask) for _ in range(passes)) / passes
            total += nats.float().cpu().numpy() / math.log(2) * count
            weight += count
    return (total / max(weight, 1)).tolist()
