"""How far an edit has got and how long it has left, and how often it shows a preview.

The time left is the sampling still to do at the rate measured so far, plus the work that comes
after the last sampling step (ranking and compositing the candidates) at this machine's measured
speeds. Those speeds are kept by whoever runs edits (`EditSpeeds`: one per editing session, so two
sessions in one process never overwrite each other's figures); a run measures them again as it
goes.
"""

from __future__ import annotations

import bisect
import time
from dataclasses import dataclass, field

# The sampling rate is measured from this share of the time so far on: not from the start, where
# a run is slower while memory is first touched, nor only over the last moments, which in a short
# run are too few steps to go by.
RATE_SINCE = 0.25
PREVIEW_RATE = 20.0  # previews per second at most (the app shows them as they come)
PREVIEW_SHARE = 0.2  # the most of a run's time spent making previews
# Each pixel the colour matching solves for costs several times a copied pixel (a first guess,
# which the measured compose speed corrects from each run; benchmarks/edit_time.py measures edits).
SOLVED_PIXEL_COST = 6.0


class MeasuredSpeed:
    """This machine's measured time per unit of some work (a first guess until measured)."""

    def __init__(self, seconds_per_unit: float, least_units: float = 0.0):
        self.seconds_per_unit = seconds_per_unit
        # Smaller pieces of work are not measured: fixed costs dominate them (and they are quick).
        self.least_units = least_units

    def measured(self, seconds: float, units: float) -> None:
        if units > 0 and units >= self.least_units:
            self.seconds_per_unit = 0.5 * self.seconds_per_unit + 0.5 * seconds / units


def _first_compose_guess() -> MeasuredSpeed:
    return MeasuredSpeed(0.33e-6, least_units=50_000)  # per compose_units


def _first_rank_guess() -> MeasuredSpeed:
    # Ranking runs the model's objective over each window's candidates; the guess is of the
    # bundled photo model's order of magnitude (per window x candidate).
    return MeasuredSpeed(8e-3)


@dataclass
class EditSpeeds:
    """The speeds of the work after an edit's last sampling step, as edits here measured them."""

    compose: MeasuredSpeed = field(default_factory=_first_compose_guess)
    rank: MeasuredSpeed = field(default_factory=_first_rank_guess)


def compose_units(box_pixels: int, solved_pixels: int) -> float:
    """The work of compositing one candidate: every pixel of the mask's box is upscaled and copied;
    every pixel the colour matching solves for costs SOLVED_PIXEL_COST times as much."""
    return box_pixels + SOLVED_PIXEL_COST * solved_pixels


class TimeLeft:
    """A run's clock: the share of its sampling done, the time left, and the share of the whole
    run's time done as reported (never going back)."""

    def __init__(self):
        self.start = 0.0
        self.sampled = 0.0  # the share of the sampling done (from the windows' and levels' work)
        self.history: list[tuple[float, float]] = []  # (seconds since the start, sampled)
        self.fraction = 0.0

    def begin(self) -> None:
        self.start = time.perf_counter()

    def elapsed(self) -> float:
        return time.perf_counter() - self.start

    def advance(self, sampled: float) -> None:
        self.sampled = max(self.sampled, min(1.0, sampled))

    def sampling_eta(self, after_sampling: float) -> float | None:
        """The sampling still to do at the rate over the last (1 - RATE_SINCE) of the time so far,
        plus `after_sampling` seconds; None until there is a rate to go by."""
        elapsed = self.elapsed()
        self.history.append((elapsed, self.sampled))
        if self.sampled <= 0.01:
            return None
        since = bisect.bisect_left(self.history, (elapsed * RATE_SINCE, -1.0))
        then, sampled_then = self.history[since]
        if self.sampled - sampled_then < 0.005 or elapsed - then <= 0:  # too little to go by
            then, sampled_then = 0.0, 0.0
        rate = (self.sampled - sampled_then) / (elapsed - then)
        return (1.0 - self.sampled) / rate + after_sampling

    def report(self, eta: float | None) -> tuple[float, float]:
        """(elapsed, fraction) for a progress event with this time left."""
        elapsed = self.elapsed()
        if eta is not None:
            self.fraction = max(self.fraction, min(1.0, elapsed / max(elapsed + eta, 1e-9)))
        return elapsed, self.fraction


class PreviewPacer:
    """When a sampling step shows a new preview: at most PREVIEW_RATE times a second and in at most
    PREVIEW_SHARE of the time. A preview is upscaled to the image, which at a coarse work scale
    costs more than the sampling step it shows."""

    def __init__(self):
        self.shown_at = 0.0
        self.cost = 0.0

    def due(self, now: float) -> bool:
        return now - self.shown_at >= max(1.0 / PREVIEW_RATE, self.cost / PREVIEW_SHARE)

    def made(self, started: float) -> None:
        """A preview was made from `started` (time.perf_counter()) until now."""
        self.shown_at = time.perf_counter()
        self.cost = self.shown_at - started
