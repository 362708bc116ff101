"""Checks a request against the model before any work starts; messages say what to change."""

from __future__ import annotations

import numpy as np

from fractal_studio.devices import PRECISIONS
from fractal_studio.errors import UserError
from fractal_studio.model.config import MAX_CFG, MIN_TEMPERATURE, ModelConfig
from fractal_studio.sampling.request import CFG_SCHEDULES, SampleRequest


def validate_request(config: ModelConfig, request: SampleRequest) -> None:
    side = config.resolution
    canvas, known = request.canvas, request.known
    shapes = ((side, side, 3), (request.candidates, side, side, 3))
    if not isinstance(canvas, np.ndarray) or canvas.dtype != np.uint8 or canvas.shape not in shapes:
        raise UserError(f"the canvas must be a uint8 array of shape ({side}, {side}, 3) for this model "
                        f"(or one such canvas per candidate), got {describe(canvas)}")
    if not isinstance(known, np.ndarray) or known.shape != (side, side):
        raise UserError(f"the known mask must have shape ({side}, {side}), got {describe(known)}")
    if known.dtype != bool:
        raise UserError(f"the known mask must be boolean, got {known.dtype}")
    if request.class_id is not None:
        if not 0 <= int(request.class_id) < config.class_num:
            raise UserError(f"class {request.class_id} is out of range: this model has classes "
                            f"0..{config.class_num - 1}")
    if not np.isfinite(request.cfg) or not 1.0 <= request.cfg <= MAX_CFG:
        raise UserError(f"guidance scale (cfg) must be between 1.0 (no guidance) and {MAX_CFG:g}, "
                        f"got {request.cfg}")
    if request.cfg_schedule not in CFG_SCHEDULES:
        raise UserError(f"cfg schedule must be one of {', '.join(CFG_SCHEDULES)}, "
                        f"got {request.cfg_schedule!r}")
    if not np.isfinite(request.temperature) or not MIN_TEMPERATURE <= request.temperature <= 100:
        raise UserError(f"temperature must be between {MIN_TEMPERATURE:g} and 100, got {request.temperature}")
    if not np.isfinite(request.spread) or not 0.0 <= request.spread <= 1.0:
        raise UserError(f"spread must be between 0 (each pixel's median) and 1 (the model's "
                        f"distribution), got {request.spread}")
    if not 0.0 <= request.filter_threshold < 1.0:
        raise UserError(f"filter threshold must be in [0, 1), got {request.filter_threshold}")
    if request.candidates < 1:
        raise UserError(f"the number of candidates must be at least 1, got {request.candidates}")
    if request.precision not in PRECISIONS:
        raise UserError(f"precision must be one of {', '.join(PRECISIONS)}, got {request.precision!r}")
    if (request.reference is None) != (request.detail_seed is None):
        raise UserError("varying the detail needs both the earlier result and a seed for the new detail")
    if request.reference is not None:
        shape = (request.candidates, side, side, 3)
        if not isinstance(request.reference, np.ndarray) or request.reference.dtype != np.uint8 \
                or request.reference.shape != shape:
            raise UserError(f"the result to vary must be a uint8 array of shape {shape}, "
                            f"got {describe(request.reference)}")
    resolved_iterations(config, request)


def resolved_iterations(config: ModelConfig, request: SampleRequest) -> tuple[int, ...]:
    iterations = tuple(request.iterations or config.sampling.iterations)
    levels = len(config.generators)
    if len(iterations) != levels:
        raise UserError(f"give {levels} iteration counts (one per generator level), got {len(iterations)}")
    if any(int(i) < 1 for i in iterations):
        raise UserError(f"iterations must be at least 1 at every level, got {','.join(map(str, iterations))}")
    return tuple(int(i) for i in iterations)


def parse_iterations(text: str | None, option: str = "iterations") -> tuple[int, ...] | None:
    """Steps per generator level from text such as "64,16" (commas or spaces between); None for empty
    text, which means the model's defaults. `option` is what messages call the field (the CLI's
    --iterations, the app's Iterations box): one parser, so both accept and refuse the same texts."""
    parts = (text or "").replace(",", " ").split()
    if not parts:
        return None
    try:
        values = tuple(int(part) for part in parts)
    except ValueError:
        raise UserError(f"{option} expects whole numbers separated by commas, e.g. 64,16; "
                        f"got {text!r}") from None
    if min(values) < 1:
        raise UserError(f"{option} must be at least 1 at every level (e.g. 64,16), got {text!r}")
    return values


def describe(value) -> str:
    """What a value is, for an error message: an array's dtype and shape, else its type."""
    if isinstance(value, np.ndarray):
        return f"{value.dtype} array of shape {value.shape}"
    return type(value).__name__
