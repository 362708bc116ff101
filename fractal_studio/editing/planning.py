"""Planning an edit: the working scale and the windows (no model, no pixels sampled).

`plan_edit` picks the working scale (native pixels, or a downscale so the region fits in a few
windows) and places the model-sized windows over the region to generate; `engine.run_edit` then
runs them.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, replace

import cv2
import numpy as np

from fractal_studio.editing.options import EditOptions
from fractal_studio.editing.windows import (
    Rect,
    anchor_windows,
    count_table,
    lower_bound_windows,
    place_windows,
    working_size,
    working_unknown,
)
from fractal_studio.errors import UserError
from fractal_studio.geometry import bounding_rect

MAX_AUTO_WINDOWS = 6  # `auto` stays native while the region needs at most this many windows
# Downscale factors `auto` tries, smallest first (after native); beyond the list, powers of 2.
DEPTH_MEASURE_PIXELS = 4_000_000  # deepest_hole measures larger boxes at a reduced size
AUTO_FACTORS = (1.25, 1.5, 1.75, 2.0, 2.5, 3.0, 3.5, 4.0, 5.0, 6.0, 7.0, 8.0, 10.0, 12.0, 14.0, 16.0,
                20.0, 24.0, 28.0, 32.0, 40.0, 48.0, 56.0, 64.0)


@dataclass(frozen=True)
class EditPlan:
    scale: float  # image pixels per model pixel (1.0 = native)
    windows: list[Rect]  # working-scale coordinates, in the order they run
    working_size: tuple[int, int]  # (w, h) of the image at the working scale

    @property
    def native(self) -> bool:
        return self.scale == 1.0


def default_margin(resolution: int) -> int:
    """Half a window: each window continues from as much known context as it covers new pixels."""
    return resolution // 2


# ------------------------------------------------------------------------------------ planning
def plan_edit(image_shape, mask: np.ndarray, resolution: int,
              options: EditOptions = EditOptions(), patches: tuple[int, ...] = (),
              hole_depth: float | None = None) -> EditPlan:
    """The working scale and the windows for an edit of `mask` (True = generate) on an image.

    patches: the model's patch side at each level, top first; windows are then shifted so that the
    region's edges fall inside patches rather than on their borders (see windows.anchor_windows).
    hole_depth: the deepest hole the model fills well (model pixels from the nearest known pixel;
    the model's `sampling.hole_depth`): `auto` then also downscales until no hole is deeper. A weak
    model fills well only where its smallest patches still hold known pixels and draws flat blocks
    of a guessed colour deeper inside; downscaled, the same hole is shallow."""
    plan, unknown = _plan(image_shape, mask, resolution, options, hole_depth)
    patches = tuple(p for p in patches if p >= 2)
    if not patches:
        return plan
    return EditPlan(scale=plan.scale, windows=anchor_windows(plan.windows, unknown, resolution, patches),
                    working_size=plan.working_size)


def _plan(image_shape, mask: np.ndarray, resolution: int, options: EditOptions,
          hole_depth: float | None = None) -> tuple[EditPlan, np.ndarray]:
    """The plan and the working-scale unknown map it was made from."""
    height, width = int(image_shape[0]), int(image_shape[1])
    size = (width, height)
    margin = context_margin(options, resolution)
    scale_option = parse_work_scale(options.work_scale)
    if scale_option != "auto":
        factor = 1.0 if scale_option == "native" else float(scale_option)
        wsize = working_size(size, factor)
        unknown = working_unknown(mask, wsize)
        windows = place_windows(unknown, resolution, margin)
        return EditPlan(scale=factor, windows=windows, working_size=wsize), unknown
    table = None
    masked = int(mask.sum())
    shallow = 1.0 if hole_depth is None else deepest_hole(mask) / hole_depth  # the factor that makes it so
    for factor in _auto_factors(size, resolution):
        if factor < shallow and factor * resolution < max(size):
            continue
        wsize = working_size(size, factor)
        # Cheap bound first: a model pixel holds at most ceil(sx)·ceil(sy) source pixels.
        footprint = math.ceil(width / wsize[0]) * math.ceil(height / wsize[1])
        if masked / footprint / resolution**2 > MAX_AUTO_WINDOWS:
            continue
        if factor != 1.0 and table is None:
            table = count_table(mask)
        unknown = working_unknown(mask, wsize, table)
        if lower_bound_windows(unknown, resolution) > MAX_AUTO_WINDOWS:
            continue
        windows = place_windows(unknown, resolution, margin, limit=MAX_AUTO_WINDOWS)
        if len(windows) <= MAX_AUTO_WINDOWS or max(wsize) <= resolution:
            return EditPlan(scale=factor, windows=windows, working_size=wsize), unknown
    raise AssertionError("unreachable: the last factor fits the image in one window")


# Coarse to fine: the finer scales together run at most this many windows' work, the finest that
# fits last. A finer scale's candidates run as one batch, each added candidate costing about
# DETAIL_EXTRA_CANDIDATE of a window (benchmarks/quality.py photo prints the edit times).
DETAIL_WINDOW_BUDGET = 20
DETAIL_EXTRA_CANDIDATE = 0.25
DETAIL_STEP = 2.0  # each finer scale has twice the last one's pixels each way


def detail_plans(image_shape, mask: np.ndarray, resolution: int, coarse: EditPlan, options: EditOptions,
                 patches: tuple[int, ...] = ()) -> list[EditPlan]:
    """The finer scales of a coarse-to-fine fill after `coarse` (finest last; none when the coarse
    plan is native): powers of two, the first at least 1.5 times finer than the coarse scale (a
    finer step adds too little detail for its windows), down to native pixels or the finest
    scale the window budget allows."""
    scales = []
    factor = 1.0
    while factor * DETAIL_STEP * 1.5 <= coarse.scale + 1e-9:
        factor *= DETAIL_STEP
    while factor >= 1.0 and factor * 1.5 <= coarse.scale + 1e-9:
        scales.append(factor)
        factor /= DETAIL_STEP
    plans, spent = [], 0
    for factor in scales:
        work_scale = "native" if factor == 1.0 else factor
        plan = plan_edit(image_shape, mask, resolution, replace(options, work_scale=work_scale),
                         patches=patches)
        spent += len(plan.windows) * (1.0 + DETAIL_EXTRA_CANDIDATE * (int(options.candidates) - 1))
        if spent > DETAIL_WINDOW_BUDGET:  # (none at all when not even the first finer scale fits)
            break
        plans.append(plan)
    return plans


def deepest_hole(mask: np.ndarray) -> float:
    """How far (in pixels) the unknown pixel farthest from any known pixel is from one: half a
    brush stroke's width, a border strip's width; infinite when nothing is known."""
    box = bounding_rect(mask)
    if box is None:
        return 0.0
    if bool(mask.all()):
        return math.inf
    height, width = mask.shape
    # Outside the box every pixel is known: the box and a 1-pixel band around it hold the nearest
    # known pixel of each unknown one. Beyond the image's edge counts as unknown (an outpainting
    # strip ends at the border and is as deep as it is wide).
    top, left = max(0, box.top - 1), max(0, box.left - 1)
    bottom, right = min(height, box.bottom + 1), min(width, box.right + 1)
    crop = mask[top:bottom, left:right].astype(np.uint8)
    # A box of many megapixels is measured at a reduced size (a reduced pixel is unknown if any of
    # its pixels is): the answer only picks a scale among a few, and 10 MP take ~0.2 s in full.
    step = max(1, math.ceil(math.sqrt(crop.size / DEPTH_MEASURE_PIXELS)))
    if step > 1:
        crop = cv2.resize(crop, (math.ceil(crop.shape[1] / step), math.ceil(crop.shape[0] / step)),
                          interpolation=cv2.INTER_AREA) > 0
    pads = ((int(top == 0), int(bottom == height)), (int(left == 0), int(right == width)))
    padded = np.pad(crop.astype(np.uint8), pads, constant_values=1)
    # distanceTransform measures to the nearest zero pixel: the known pixels are the zeros.
    distance = cv2.distanceTransform(padded, cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    inside = distance[pads[0][0]:padded.shape[0] - pads[0][1], pads[1][0]:padded.shape[1] - pads[1][1]]
    return float(inside.max()) * step


def _auto_factors(size: tuple[int, int], resolution: int) -> Iterator[float]:
    yield 1.0
    largest = max(size) / resolution  # at this factor the whole image is one window
    for factor in AUTO_FACTORS:
        if factor >= largest:
            break
        yield factor
    factor = AUTO_FACTORS[-1]
    while factor * 2 < largest:
        factor *= 2
        yield factor
    yield max(1.0, largest)


def parse_work_scale(value) -> str | float:
    """'auto', 'native' or a float factor >= 1 (1 means native); a UserError otherwise."""
    if isinstance(value, str):
        text = value.strip().lower()
        if text in ("auto", "native"):
            return text
        try:
            value = float(text.rstrip("x×"))
        except ValueError:
            raise UserError(f"work scale must be auto, native or a downscale factor such as 2, "
                            f"got {value!r}") from None
    try:
        factor = float(value)
    except (TypeError, ValueError):
        raise UserError(f"work scale must be auto, native or a number, got {value!r}") from None
    if not math.isfinite(factor) or factor < 1.0:
        raise UserError(f"the work scale factor must be at least 1 (1 = native pixels), got {value}")
    return "native" if factor == 1.0 else factor


def context_margin(options: EditOptions, resolution: int) -> int:
    """Known context around each window, in model pixels (checked: 0 to half a window)."""
    margin = default_margin(resolution) if options.margin is None else options.margin
    if not isinstance(margin, int | np.integer) or not 0 <= margin <= resolution // 2:
        raise UserError(f"the context margin must be a whole number from 0 to {resolution // 2} "
                        f"(model pixels) for this {resolution}×{resolution} model, got {options.margin}")
    return int(margin)
