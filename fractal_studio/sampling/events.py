"""Typed events that the sampler yields while it works; the UI and the CLI only consume these."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class Progress:
    """Sent after every step of the top level and of the second level.

    `canvas` holds the current state of every candidate, uint8 [N, H, W, 3]: known pixels, pixels
    generated so far, and (for patches being worked on) the latest partial result.
    `region` is (top, left, bottom, right) of the pixels that changed since the previous event.
    """

    level: int  # 0 = top level
    step: int  # 1-based step at this level
    steps: int  # steps at this level (for the current patch at level > 0)
    canvas: np.ndarray
    region: tuple[int, int, int, int]
    elapsed: float  # seconds since the start of the run
    fraction: float  # overall progress, 0..1, monotone over a run


@dataclass(frozen=True)
class Finished:
    """The last event of every run. `cancelled` runs return what they had, known pixels intact."""

    candidates: list[np.ndarray] = field(default_factory=list)  # each uint8 [H, W, 3]
    elapsed: float = 0.0
    cancelled: bool = False
    # With SampleRequest.uncertainty: each candidate's float32 [H, W] entropy, in bits summed over
    # R, G and B (0..24), of the distributions its generated pixels were drawn from; NaN at
    # pixels that were not drawn (known ones, and those a cancelled run had not reached).
    uncertainty: list[np.ndarray] | None = None


SamplerEvent = Progress | Finished
