"""What the sampler is asked to do: one canvas at model resolution, which pixels are known, and how."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

CFG_SCHEDULES = ("constant", "linear")


@dataclass(frozen=True)
class SampleRequest:
    """One sampling run.

    canvas: uint8 [R, R, 3] at the model's resolution, or [candidates, R, R, 3]: each candidate's own
      known pixels (a coarse-to-fine fill's guide pixels differ between candidates); only pixels
      where `known` is True are read.
    known: bool [R, R]; False marks the pixels to generate.
    class_id: None for unconditional sampling (the model's learned "no class" embedding).
    temperature: logits are divided by it (the usual meaning; the paper's 1.02 is 1/1.02 here).
    spread: each pixel value is drawn from the central `spread` of its distribution's mass: 1 = the
      model's distribution, smaller = nearer each pixel's median (no specks), 0 = the median.
    iterations: steps per generator level; None takes the model's defaults.
    precision: matrix products in bf16 (autocast: on CUDA GPUs that compute it natively, and on CPUs
      with native bf16 for wide models), fp16 (older CUDA GPUs) or fp32. Reproducible in each for a
      given device and precision.
    reference, detail_seed: "vary detail". reference: uint8 [candidates, R, R, 3], what a run of
      this very request made. The top level then runs exactly as it did in that run (its random
      order from `seed`, its inputs from `reference`), so its outputs, the layout of the fill, are
      the same; the levels below draw new pixels from `detail_seed`.
    uncertainty: also record each generated pixel's entropy (Finished.uncertainty); costs one
      softmax and a sum per channel drawn, so it is off unless asked for.
    """

    canvas: np.ndarray
    known: np.ndarray
    class_id: int | None = None
    cfg: float = 1.0
    cfg_schedule: str = "linear"
    temperature: float = 1.0
    spread: float = 1.0
    filter_threshold: float = 1e-4
    iterations: tuple[int, ...] | None = None
    seed: int = 0
    candidates: int = 1
    precision: str = "auto"  # "auto" (see devices.resolve_precision), "fp32", "bf16" or "fp16" (CUDA)
    reference: np.ndarray | None = None
    detail_seed: int | None = None
    uncertainty: bool = False

    @property
    def guided(self) -> bool:
        """Classifier-free guidance runs: each candidate is sampled with and without its class."""
        return self.class_id is not None and self.cfg != 1.0

    @property
    def rows(self) -> int:
        """The batch the model runs on: the candidates, twice over when guided."""
        return self.candidates * (2 if self.guided else 1)

    @classmethod
    def generate(cls, resolution: int, **options) -> SampleRequest:
        """A request with nothing known: plain (class-conditional or unconditional) generation."""
        canvas = np.zeros((resolution, resolution, 3), np.uint8)
        return cls(canvas=canvas, known=np.zeros((resolution, resolution), bool), **options)
