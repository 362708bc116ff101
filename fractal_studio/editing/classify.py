"""Which of a model's classes an image is, and whether it is like the model's training data (no Qt):
what `fractal-studio classify` prints and the app's "Suggest from the image" offers."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from fractal_studio.editing.model_input import model_input
from fractal_studio.model.classify import ClassScores, Typicality, class_scores


@dataclass(frozen=True)
class ClassResult:
    """One image's classes, most probable first, as (class id, name, probability); its bits/dim under
    the mixture of the classes (uniform prior); `unusual` None when the model records no threshold."""

    ranked: list[tuple[int, str, float]]
    bits_per_dim: float
    unusual: bool | None

    @property
    def best(self) -> tuple[int, str, float]:
        return self.ranked[0]


def class_results(model, pixels: list[np.ndarray], typicality: Typicality | None, orders: int = 8,
                  seed: int = 0) -> list[ClassResult]:
    """Scores RGB uint8 images [H, W, 3] brought to the model's input by its recipe."""
    config = model.config
    recipe = typicality.recipe if typicality is not None else "centre"
    inputs = np.stack([model_input(p, config.resolution, recipe) for p in pixels])
    images = torch.from_numpy(np.ascontiguousarray(inputs)).permute(0, 3, 1, 2)
    torch.manual_seed(seed)
    return [_result(config, scores, typicality) for scores in class_scores(model, images, orders)]


def _result(config, scores: ClassScores, typicality: Typicality | None) -> ClassResult:
    ranked = [(c, config.class_name(c), float(scores.probabilities[c])) for c in scores.ranked()]
    bits = scores.mixture_bits_per_dim
    unusual = None if typicality is None else bits > typicality.unusual_above
    return ClassResult(ranked, bits, unusual)
