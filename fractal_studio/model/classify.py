"""A class-conditional model as a classifier: the class posterior from the model's own likelihoods.

Bayes with a uniform prior: p(c | x) is proportional to p(x | c). For MAR levels each likelihood is
the paper's estimate over random masking orders; every class of an image is scored with the SAME
masks, so that the comparison between classes carries the difference of the classes, not of the
orders drawn. The classes of an image are one batch.

A model file may record how typical its own held-out data are (`Typicality`): an image whose
bits/dim is above the threshold is unlike what the model was trained on.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass

import torch

from fractal_studio.model.fractal import FractalModel, evaluation_mask, training_mask

TYPICALITY_KEY = "typicality"


@dataclass(frozen=True)
class Typicality:
    """The model's bits/dim on its own held-out data (a median) and the bits/dim above which an image
    is called unusual; `recipe` is how images are brought to the model's input ("pad" for 28x28
    data padded to the model's side, "centre" for the centred square); `note` says how it was set."""

    held_out_bits_per_dim: float
    unusual_above: float
    recipe: str = "centre"
    note: str = ""

    def to_json(self) -> str:
        return json.dumps({"held_out_bits_per_dim": self.held_out_bits_per_dim,
                           "unusual_above": self.unusual_above, "recipe": self.recipe, "note": self.note})

    @classmethod
    def from_json(cls, text: str) -> Typicality:
        table = json.loads(text)
        return cls(float(table["held_out_bits_per_dim"]), float(table["unusual_above"]),
                   str(table.get("recipe", "centre")), str(table.get("note", "")))


@dataclass(frozen=True)
class ClassScores:
    """One image's class posterior and bits/dim (under each class and under the mixture of classes)."""

    probabilities: torch.Tensor  # [K]
    class_bits_per_dim: torch.Tensor  # [K]
    mixture_bits_per_dim: float

    def ranked(self) -> list[int]:
        return torch.argsort(self.probabilities, descending=True).tolist()


def shared_masks(model: FractalModel, images: int, classes: int, device,
                 style: str = "orders") -> list[torch.Tensor]:
    """One random mask per MAR level for each of `images` images ("orders": the paper's evaluation
    masks, a uniform number of tokens masked; "trained": MAR's training masks, mostly 70-100%),
    repeated for each of its `classes` copies, in the batch order image-major (copy i * classes + c),
    as `FractalModel.loss(masks=...)` takes them."""
    per_level: list[list[torch.Tensor]] = []
    for _ in range(images):
        instances, masks = 1, []
        for index, level in enumerate(model.levels):
            length = model.config.seq_len(index)
            if level.kind == "mar":
                draw = evaluation_mask if style == "orders" else training_mask
                mask = draw(instances, length, device)
                masks.append(mask.repeat(classes, 1))
                instances = int(mask.sum())
            else:
                instances *= length
        per_level.append(masks)
    return [torch.cat(level_masks) for level_masks in zip(*per_level)]


@torch.no_grad()
def class_scores(model: FractalModel, images: torch.Tensor, orders: int = 8,
                 masks: str = "orders") -> list[ClassScores]:
    """The posterior over the model's classes for each uint8 image [B, 3, R, R]. masks: "orders" (the
    paper's likelihood: random evaluation masks, `orders` of them), "trained" (masks drawn as MAR
    trains, `orders` of them) or "all" (every token masked at every MAR level: one exact pass)."""
    config = model.config
    if not config.conditional:
        raise ValueError(f"{config.name} has no classes")
    if config.guiding_pixel:
        raise ValueError(f"{config.name} predicts guiding pixels: it defines no likelihood to classify by")
    classes, batch = config.class_num, images.shape[0]
    device = model.fake_latent.device
    copies = images.to(device).repeat_interleave(classes, dim=0)
    labels = torch.arange(classes, device=device).repeat(batch)
    has_mar = any(level.kind == "mar" for level in model.levels)
    passes = orders if has_mar and masks != "all" else 1
    nats = torch.zeros(batch * classes, device=device)
    for _ in range(passes):
        drawn = shared_masks(model, batch, classes, device, masks) if has_mar and masks != "all" else None
        nats += model.loss(copies, labels, masks="all" if masks == "all" else drawn)
    per_dim = (nats / passes).view(batch, classes).double().cpu()
    dims = 3 * config.resolution ** 2
    log_likelihood = -per_dim * dims
    mixture = torch.logsumexp(log_likelihood, dim=1) - math.log(classes)
    posterior = torch.softmax(log_likelihood, dim=1)
    return [ClassScores(posterior[i], per_dim[i] / math.log(2), float(-mixture[i] / dims / math.log(2)))
            for i in range(batch)]


def read_typicality(path) -> Typicality | None:
    """The typicality a model file records (None when it records none)."""
    from fractal_studio.errors import ModelFileError
    from fractal_studio.model.weights import read_header

    _, metadata = read_header(path)
    text = metadata.get(TYPICALITY_KEY)
    if text is None:
        return None
    try:
        return Typicality.from_json(text)
    except (ValueError, KeyError, TypeError) as error:
        raise ModelFileError(f"{path} is damaged: its {TYPICALITY_KEY} is unreadable ({error})") from None
