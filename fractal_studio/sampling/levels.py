"""What the sampler's levels pass to each other: one record in (a `LevelCall`), plain steps out.

A level fills the unknown pixels of its call's image; for each unknown patch it makes a smaller
call to the next level (down to the per-pixel head). The levels whose steps are shown yield a
`LevelStep` (their own image after the step); the sampler's top level places it on the canvas
through the call's `placements` and builds the Progress event. Levels never render.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from fractal_studio.model.layers import unpatchify
from fractal_studio.sampling.request import CFG_SCHEDULES


@dataclass(frozen=True)
class Placement:
    """Where a child call's images lie in its parent's image: the patches (`rows`, `cols`) of the
    parent's `patches` [N, L, 3*p*p]. The parent fills `patches` in place as it runs, so a placement
    always shows the parent's latest state."""

    patches: torch.Tensor
    rows: torch.Tensor
    cols: torch.Tensor
    patch: int  # p, the side of a patch in pixels
    side: int  # the side of the parent's image in pixels

    def crop(self) -> torch.Tensor:
        """The placed patches as images [n, 3, p, p]."""
        return self.patches[self.rows, self.cols].view(-1, 3, self.patch, self.patch)

    def write(self, patches: torch.Tensor, images: torch.Tensor) -> None:
        """Writes `images` [n, 3, p, p] into the placed patches of `patches` (this one or a copy)."""
        patches[self.rows, self.cols] = images.reshape(self.rows.numel(), -1).to(patches.dtype)

    def parent_image(self, images: torch.Tensor) -> torch.Tensor:
        """The parent's image [N, 3, side, side] with `images` in the placed patches (a copy)."""
        composed = self.patches.clone()
        self.write(composed, images)
        return unpatchify(composed, self.patch, self.side)


@dataclass(frozen=True)
class LevelCall:
    """What one level is asked to do: fill the unknown pixels of `pixels`, keeping the known ones."""

    index: int  # the level; len(model.levels) is the per-pixel head
    conds: tuple[torch.Tensor, ...]  # conditions from above (guided runs: conditional rows, then the rest)
    pixels: torch.Tensor  # [N, 3, S, S] normalised
    known: torch.Tensor  # bool [N, S, S]
    cfg: float  # the guidance scale
    schedule: str  # how the guidance changes over this call's steps: one of CFG_SCHEDULES
    span: tuple[float, float]  # the share of the whole run this call covers, for Progress.fraction
    placements: tuple[Placement, ...] = ()  # from the canvas down to this call's image

    def __post_init__(self):
        count, _, height, width = self.pixels.shape
        if tuple(self.known.shape) != (count, height, width):
            raise ValueError(f"known {tuple(self.known.shape)} does not match pixels "
                             f"{tuple(self.pixels.shape)}: it should be {(count, height, width)}")
        if self.schedule not in CFG_SCHEDULES:
            raise ValueError(f"schedule must be one of {CFG_SCHEDULES}, got {self.schedule!r}")

    def child(self, placement: Placement, known_patches: torch.Tensor, conds: tuple[torch.Tensor, ...],
              cfg: float, span: tuple[float, float]) -> LevelCall:
        """The next level's call for the patches `placement` picks from this call's image;
        `known_patches` is bool [N, L, p*p], this image's known map cut into patches."""
        rows, cols, patch = placement.rows, placement.cols, placement.patch
        return LevelCall(index=self.index + 1, conds=conds, pixels=placement.crop(),
                         known=known_patches[rows, cols].view(-1, patch, patch), cfg=cfg, schedule="constant",
                         span=span, placements=(*self.placements, placement))

    def weighted_spans(self, work: list[float]) -> list[tuple[float, float]]:
        """The level's share of the run split among its steps in proportion to each step's work
        (the patches it predicts: what its lower levels will spend time on), so progress and the
        time-left estimate follow the time spent, not the count of steps."""
        low, high = self.span
        total = float(sum(work))
        if total <= 0:
            return [self.step_span(step, len(work)) for step in range(len(work))]
        spans, done = [], 0.0
        for amount in work:
            start = low + (high - low) * done / total
            done += amount
            spans.append((start, low + (high - low) * done / total))
        return spans

    def step_span(self, step: int, steps: int) -> tuple[float, float]:
        """The share of the whole run that step `step` (0-based) of `steps` covers."""
        low, high = self.span
        width = (high - low) / steps
        return (low + width * step, low + width * (step + 1))


@dataclass(frozen=True)
class LevelStep:
    """A level's image after one of its steps; the sampler turns it into a Progress event."""

    level: int
    step: int  # 1-based
    steps: int
    images: torch.Tensor  # [N, 3, S, S] normalised, at the level's own resolution
    fraction: float  # the share of the whole run done
    placements: tuple[Placement, ...]  # from the canvas down to `images`

    def on_canvas(self) -> torch.Tensor:
        """The images placed into their ancestors' latest state, up to the whole canvas."""
        images = self.images
        for placement in reversed(self.placements):
            images = placement.parent_image(images)
        return images
