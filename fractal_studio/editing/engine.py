"""Running one edit (inpaint, outpaint, uncrop, class edit) on an image of any size.

    for event in run_edit(model, image, mask, EditOptions(class_id=2, candidates=4)):
        if isinstance(event, EditProgress): show(event.rect, event.preview)
        else: result = event   # EditResult, always the last event

The model works on R×R canvases. `plan_edit` (module `planning`) picks the working scale (native
pixels, or a downscale so the region fits in a few windows) and the windows; `run_edit` samples the
windows one after another, each conditioned on the image and on the earlier windows' results, and
composites the generated pixels into the image ONLY inside the mask: every pixel outside it is bit-exact.

Working scale: at a downscale, the image is area-filtered (cv2.INTER_AREA); a model pixel is known
only if all its source pixels are known; generated pixels come back with a bicubic filter (clipped).
At `native` there is no resampling at all.

Candidates: window 1 samples N candidates in one batch; each later window continues every candidate's
own canvas (candidates whose context is identical share one batched run).
"""

from __future__ import annotations

import threading
import time
import zlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from fractal_studio.editing.candidates import CandidateImages
from fractal_studio.editing.compositing import blend, match_colours
from fractal_studio.editing.continuation import continuation, mixed_guides
from fractal_studio.editing.deblock import deep_fill_weight, soften_deep_fill
from fractal_studio.editing.pins import with_pins
from fractal_studio.editing.planning import (
    MAX_AUTO_WINDOWS,
    EditOptions,
    EditPlan,
    default_margin,
    detail_plans,
    plan_edit,
)
from fractal_studio.editing.record import coarse_to_fine_record, edit_record
from fractal_studio.editing.seamless import seamless_fills
from fractal_studio.editing.timing import EditSpeeds, PreviewPacer, TimeLeft, compose_units
from fractal_studio.editing.uncertainty import finest_drawn, working_to_image
from fractal_studio.editing.windows import (
    Rect,
    bounding_rect,
    downscale,
    mirrored,
    padded_shape,
    to_image_rect,
    union_rect,
    upscale_region,
    working_unknown,
)
from fractal_studio.errors import UserError

__all__ = ["Rect", "EditOptions", "EditPlan", "EditProgress", "EditResult", "EditSpeeds", "Vary", "plan_edit",
           "run_edit", "MAX_AUTO_WINDOWS", "default_margin"]

WINDOW_SECONDS = 0.02  # a window's time outside the sampler (crops, previews), as sampling/cost.py counts
PREVIEW_CONTEXT = 3  # working pixels around a window used when upscaling its preview (cubic support)

CancelCheck = Callable[[], bool] | threading.Event | None


@dataclass(frozen=True)
class EditProgress:
    window: int  # 1-based
    windows: int
    level: int
    step: int
    steps: int
    fraction: float  # overall, 0..1, monotone
    rect: Rect  # image coordinates of the pixels `preview` shows
    preview: np.ndarray  # uint8 [rect.height, rect.width, 3]: candidate 0, composited, image scale
    elapsed: float
    eta: float | None
    sampled: float = 0.0  # the share of the sampling done (1.0 while candidates are composited)


@dataclass(frozen=True)
class EditResult:
    candidates: Sequence[np.ndarray]  # uint8 [H, W, 3] each: the whole canvas (CandidateImages)
    cancelled: bool
    elapsed: float
    metadata: dict[str, str]
    options: EditOptions
    plan: EditPlan | None = field(default=None, compare=False)
    # The model's bits per generated value of each candidate's fill (editing/ranking.py), best
    # first; None for a single candidate or a cancelled run.
    bits: tuple[float, ...] | None = None
    # What "vary detail" needs (see Vary): for each window, how the candidates were batched and
    # the pixels each batch's run gave back (working scale, the sampler's order of candidates), and
    # for each candidate above its place in that order.
    window_runs: tuple[tuple[tuple[tuple[int, ...], np.ndarray], ...], ...] = field(
        default=(), compare=False, repr=False)
    made_as: tuple[int, ...] = ()
    # A coarse-to-fine fill: each candidate's coarse fill (in `candidates`' order, as the first
    # finer scale's guide: its whole working image), the layout that "vary detail" keeps while it
    # redraws the finer scales.
    layouts: Sequence[np.ndarray] = field(default=(), compare=False, repr=False)
    # run_edit(uncertainty=True): each candidate's bits per pixel (editing/uncertainty.py), float32
    # over the candidates' box (`candidates.box`) at the image's scale, NaN outside the mask.
    uncertainty: tuple[np.ndarray, ...] | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class Vary:
    """Vary detail: rerun an edit with the same options and seed, every window's top level fed what
    that run made (so its outputs, the fill's layout, are the same), the levels below drawing anew
    from `detail_seed`. `result` is the earlier run's EditResult; the new candidates come in its
    order, each the varied version of the one at the same place."""

    result: EditResult
    detail_seed: int


# ---------------------------------------------------------------------------------- validation
def _check_inputs(model, image, mask, options: EditOptions, blank):
    """Checks everything (UserError) and returns the sampling settings resolved once: a validated
    SampleRequest of window size that every window and the metadata are made from."""
    from fractal_studio.sampling.validation import describe as _describe
    from fractal_studio.sampling.validation import validate_request

    if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise UserError(f"the image must be a uint8 RGB array [H, W, 3], got {_describe(image)}")
    if 0 in image.shape:
        raise UserError("the image is empty")
    if not isinstance(mask, np.ndarray) or mask.shape != image.shape[:2]:
        raise UserError(f"the mask must have the image's size {image.shape[1]}×{image.shape[0]}, "
                        f"got {_describe(mask)}")
    if mask.dtype != bool:
        raise UserError(f"the mask must be boolean (True = generate), got {mask.dtype}")
    if blank is not None and (not isinstance(blank, np.ndarray) or blank.shape != mask.shape):
        raise UserError("the blank-area mask must have the image's size")
    if not mask.any():
        raise UserError("the mask is empty: mark the area to generate first")
    settings = _resolve(model, options)
    validate_request(model.config, settings)
    return settings


def _resolve(model, options: EditOptions):
    """The options checked and with the model's defaults filled in (EditOptions.resolved), as a
    request for an empty window: the request's fields are taken from the options of the same name."""
    from dataclasses import fields

    from fractal_studio.sampling.request import SampleRequest

    resolved = options.resolved(model.config)
    side = model.config.resolution
    return SampleRequest(canvas=np.zeros((side, side, 3), np.uint8), known=np.zeros((side, side), bool),
                         **resolved.sampling_values(f.name for f in fields(SampleRequest)))


# ------------------------------------------------------------------------------------- running
def run_edit(model, image: np.ndarray, mask: np.ndarray, options: EditOptions = EditOptions(),
             cancel: CancelCheck = None, model_hash: str | None = None, *,
             blank: np.ndarray | None = None,
             weights: np.ndarray | None = None,
             vary: Vary | None = None,
             speeds: EditSpeeds | None = None,
             pins: np.ndarray | None = None,
             uncertainty: bool = False) -> Iterator[EditProgress | EditResult]:
    """Validates at once (UserError), then returns the generator of events; the last is an EditResult.

    blank: optional bool [H, W], pixels with no original content (new outpainting area); feathering
    never blends generated pixels with those.
    weights: optional uint8 [H, W], how much of the generated pixel to keep inside the mask (255 =
    all, as without weights): a soft brush's coverage, so soft stroke edges blend into the photo.
    Outside the mask nothing changes whatever the weights say.
    vary: vary the detail of an earlier run of these same inputs and options (see Vary).
    speeds: the measured speeds of ranking and compositing that the time left counts on, kept
    across the runs of one session (and measured again by this one); a first guess without.
    pins: optional RGBA uint8 [H, W, 4]: its opaque pixels inside the mask are kept exactly and the
    fill is drawn around them (editing/pins.py: they are known pixels to the sampler).
    uncertainty: also hand over each candidate's bits per pixel (EditResult.uncertainty).
    """
    settings = _check_inputs(model, image, mask, options, blank)
    if uncertainty:
        settings = replace(settings, uncertainty=True)
    if pins is not None:
        applied = with_pins(image, mask, pins, blank)
        image, mask, blank = applied.image, applied.mask, applied.blank
    options = options.resolved(model.config)  # every default filled: the plans, the windows and the record
    if vary is not None and (vary.result.cancelled or len(vary.result.made_as) != options.candidates):
        raise UserError("only a finished run's candidates can have their detail varied (same options)")
    if weights is not None and (not isinstance(weights, np.ndarray) or weights.shape != mask.shape
                                or weights.dtype != np.uint8):
        raise UserError("the blend weights must be a uint8 array of the image's size")
    config = model.config
    speeds = EditSpeeds() if speeds is None else speeds
    if vary is not None and vary.result.layouts:  # vary a coarse-to-fine fill: redraw its detail
        finer = detail_plans(image.shape, mask, config.resolution, vary.result.plan, options,
                             patches=config.patch_sizes)
        if not finer:
            raise UserError("this result's detail cannot be varied with these options: run it again")
        return _coarse_to_fine(model, image, mask, options, settings, None, finer, cancel, model_hash,
                               blank, weights, vary, speeds)
    plan = plan_edit(image.shape, mask, config.resolution, options, patches=config.patch_sizes,
                     hole_depth=config.sampling.hole_depth)
    finer = _detail_plans(model, image.shape, mask, plan, options, blank)
    if not finer:
        edit = _Edit(model, image, mask, options, settings, plan, cancel, model_hash, blank, weights, vary,
                     speeds=speeds)
        return edit.events()
    return _coarse_to_fine(model, image, mask, options, settings, plan, finer, cancel, model_hash,
                           blank, weights, None, speeds)


def _detail_plans(model, image_shape, mask, plan: EditPlan, options: EditOptions,
                  blank: np.ndarray | None) -> list[EditPlan]:
    """The finer scales of a coarse-to-fine fill (planning.detail_plans), or none: only a model
    that fills coarse to fine (sampling.detail_spread), an `auto` work scale that downscaled, and
    holes in a picture, not new canvas (outpainting, uncropping): there the layout is a smooth
    guess far from any known pixel, and grain drawn around it scored lower than the smooth fill
    (benchmarks/quality.py outpaint, models/photo_64.md)."""
    config = model.config
    if not options.detail or config.sampling.detail_spread is None or options.work_scale != "auto":
        return []
    if blank is not None and bool((blank & mask).any()):
        return []
    return detail_plans(image_shape, mask, config.resolution, plan, options, patches=config.patch_sizes)


def _coarse_to_fine(model, image, mask, options: EditOptions, settings, coarse: EditPlan | None,
                    finer: list[EditPlan], cancel, model_hash, blank, weights,
                    vary: Vary | None, speeds: EditSpeeds) -> Iterator[EditProgress | EditResult]:
    """Fills the hole at the coarse plan's scale (the layout), then again at each finer scale with
    every second pixel each way known from the last scale's fill (guide pixels): the model draws
    each scale's detail around the layout instead of the layout being scaled up as a blur. The
    finer scales sample each pixel nearer the model's own distribution (detail_spread) with the
    model's detail iterations. Candidates stay in the order the coarse scale ranked them.

    vary (with coarse None): an earlier coarse-to-fine result whose layouts are kept and whose
    detail is redrawn."""
    defaults = model.config.sampling
    spread = defaults.detail_spread if options.detail_spread is None else options.detail_spread
    detail = replace(settings, spread=float(spread),
                     iterations=defaults.detail_iterations or settings.iterations)
    plans = ([] if coarse is None else [coarse]) + finer
    # Each scale's share of the run: its windows, the coarse scale's at its fuller iterations.
    costs = [len(p.windows) * (2.0 if p is coarse else 1.0) for p in plans]
    total = float(sum(costs))
    started = time.perf_counter()
    if vary is None:
        guides, layout_result, base_seed = None, None, int(options.seed)
    else:
        guides, layout_result, base_seed = list(vary.result.layouts), vary.result, int(vary.detail_seed)
    result, bits = None, None
    for k, plan in enumerate(plans):
        last = k == len(plans) - 1
        seed = base_seed if plan is coarse else \
            zlib.crc32(f"{base_seed}/detail/{k}/{vary is not None}".encode())
        # (Each stage runs its own plan; the options keep the user's work scale, for the record.)
        stage = replace(options, seed=seed, feather=options.feather if last else 0)
        stage_settings = replace(settings if plan is coarse else detail, seed=seed)
        edit = _Edit(model, image, mask, stage, stage_settings, plan, cancel, model_hash, blank,
                     weights if last else None, guides=guides, rank=plan is coarse, compose=last,
                     samples=defaults.layout_samples if plan is coarse else 1,
                     lock=None if plan is coarse else defaults.detail_lock,
                     classical=defaults.guide_classical, speeds=speeds)
        done, share = sum(costs[:k]) / total, costs[k] / total
        for event in edit.events():
            if isinstance(event, EditResult):
                result = event
                break
            elapsed = time.perf_counter() - started
            eta = None
            if event.eta is not None:  # this scale's time left, then the later scales' at the rate so far
                per_cost = (elapsed + event.eta) / (done * total + costs[k])
                eta = event.eta + per_cost * sum(costs[k + 1:])
            yield replace(event, fraction=min(1.0, done + share * event.fraction), elapsed=elapsed, eta=eta)
        if result.uncertainty is not None:  # the finest scale that drew a pixel gives its bits
            bits = result.uncertainty if bits is None else tuple(
                finest_drawn(fine, coarser) for fine, coarser in zip(result.uncertainty, bits, strict=True))
        if result.cancelled:
            break
        if not last:
            guides = edit.guides(plans[k + 1].working_size)
        if plan is coarse:
            layout_result = replace(result, layouts=tuple(guides))
    if layout_result is None:  # cancelled at the coarse scale
        yield replace(result, elapsed=time.perf_counter() - started)
        return
    metadata = coarse_to_fine_record(layout_result.metadata, result.metadata, finer, detail, defaults)
    yield replace(result, elapsed=time.perf_counter() - started, metadata=metadata, options=options,
                  plan=layout_result.plan, bits=layout_result.bits, made_as=layout_result.made_as,
                  layouts=layout_result.layouts, window_runs=(), uncertainty=bits)


class _Edit:
    def __init__(self, model, image, mask, options: EditOptions, settings, plan: EditPlan, cancel, model_hash,
                 blank, weights=None, vary: Vary | None = None, guides: Sequence[np.ndarray] | None = None,
                 guide_stride: int = 2, rank: bool = True, compose: bool = True, samples: int = 1,
                 lock: float | None = None, classical: float | None = None,
                 speeds: EditSpeeds | None = None):
        self.model, self.options, self.plan = model, options, plan
        self.speeds = EditSpeeds() if speeds is None else speeds
        # Without compose (a coarse-to-fine scale before the last) the finished run's candidates
        # are left on the working canvases, for guides(): only a cancelled run composites them.
        self.compose = compose
        # samples > 1: every candidate is that many canvases, sampled as one batch, whose new
        # pixels are replaced by their mean after each window (so later windows see one canvas
        # per candidate and batch again); one canvas per candidate remains at the end.
        self.samples = int(samples)
        self.lock = lock  # the guided detail keeps the guides' colours (SamplingDefaults.detail_lock)
        self.classical = classical  # guides()'s share from a continuation (SamplingDefaults.guide_classical)
        self.vary = vary
        self.window_runs: list[tuple] = []  # per window: (candidates batched, the pixels they got)
        self.settings = settings  # the resolved, validated sampling settings (a SampleRequest)
        self.weights = weights
        self.image = np.ascontiguousarray(image)
        self.mask = np.ascontiguousarray(mask)
        self.box = bounding_rect(self.mask)  # every candidate differs from the image only inside it
        self.blank = blank
        self.cancel = cancel
        self.model_hash = model_hash
        self.R = model.config.resolution
        height, width = image.shape[:2]
        self.size = (width, height)
        w, h = plan.working_size
        self.scale_xy = (width / w, height / h)
        self.native = (w, h) == (width, height)
        work = self.image if self.native else downscale(self.image, (w, h))
        unknown = self.mask if self.native else working_unknown(self.mask, (w, h))
        ph, pw = padded_shape((h, w), self.R)
        # Everything is kept only for the area the windows touch (plus cubic context), so a small
        # edit of a big image stays small. (ox, oy) is that area's origin in working coordinates.
        # Windows may reach half a top-level patch past the padded image (planning.anchor_windows).
        reach = model.config.patch_sizes[0] // 2
        area = union_rect(plan.windows).expanded(PREVIEW_CONTEXT).intersect(
            Rect(-reach, -reach, pw + 2 * reach, ph + 2 * reach))
        self.area = area
        rows, cols = area.slices
        inside = Rect(0, 0, w, h).intersect(area)
        canvas, known = mirrored(work, ~unknown, area)  # past the image: mirrored, never output
        # A coarser scale's fill as guide pixels (coarse_to_fine): every guide_stride-th pixel of
        # the hole each way is known, from that fill, and the model draws this scale's detail
        # between them.
        local_inside = inside.shifted(-area.left, -area.top)
        pins = None
        if guides is not None:
            pins = np.zeros_like(known)
            lattice = pins[local_inside.slices]
            first_row, first_col = (-inside.top) % guide_stride, (-inside.left) % guide_stride
            lattice[first_row::guide_stride, first_col::guide_stride] = True
            lattice &= unknown[inside.slices]
            known = known | pins
        self.known = known  # grows as windows finish
        self.guided = pins is not None
        self.unknown_at_start = ~known  # the padding beyond the image counts as unknown too
        # Where the fill is deeper than the model fills well: softened in every candidate (an
        # outpainted strip ends at the image's border, so the padding counts as unknown).
        self.smallest_patch = min((p for p in model.config.patch_sizes if p >= 2), default=1)
        depth = model.config.sampling.hole_depth
        self.deep_weight = None if depth is None else deep_fill_weight(self.unknown_at_start, depth,
                                                                       self.smallest_patch)
        self.in_image = np.zeros_like(known)
        self.in_image[local_inside.slices] = True
        self.canvases = [canvas.copy() for _ in range(options.candidates * self.samples)]
        # Each canvas's bits per working pixel (settings.uncertainty), NaN until drawn.
        self.bits = None
        if settings.uncertainty:
            self.bits = [np.full(canvas.shape[:2], np.nan, np.float32) for _ in self.canvases]
        self.guide_areas = []  # each candidate's guide over the area, for the lock
        if pins is not None:
            for canvas_k, guide in zip(self.canvases, guides, strict=True):
                guide_work = guide if guide.shape[:2] == (h, w) else downscale(guide, (w, h))
                canvas_k[local_inside.slices][lattice] = guide_work[inside.slices][lattice]
                if lock is not None:
                    guide_area = canvas_k.copy()
                    guide_area[local_inside.slices] = guide_work[inside.slices]
                    self.guide_areas.append(guide_area)
        self.shares = self._window_shares()
        self.clock = TimeLeft()
        box_pixels = 0 if self.box is None else self.box.width * self.box.height
        # Colour matching solves for the mask's pixels, unless nothing around them is known.
        solved = int(self.mask.sum()) if options.seamless and not self.mask.all() else 0
        self.compose_units = compose_units(box_pixels, solved)
        self.ranked = rank and options.candidates > 1 and vary is None  # see _rank
        self.rank_units = len(plan.windows) * options.candidates if self.ranked else 0

    def _window_shares(self) -> list[tuple[float, float]]:
        """Each window's (start, width) of the run's progress, from the work it is the first to do
        (a window that finishes what earlier ones left takes less time)."""
        todo = self.in_image & ~self.known
        generated = np.zeros_like(todo)  # by earlier windows
        costs, n = [], len(self.canvases)
        for window in self.plan.windows:
            rows, cols = window.shifted(-self.area.left, -self.area.top).slices
            unknown = np.zeros((self.R, self.R), bool)  # the window may reach past the area
            crop = todo[rows, cols]
            unknown[:crop.shape[0], :crop.shape[1]] = crop
            # All candidates run as one batch, and a batch of N costs far less than N runs, until
            # a window sees pixels that earlier windows generated: they differ between candidates,
            # so each candidate runs on its own (see _groups).
            separate = bool(generated[rows, cols].any()) and not self.guided
            batch, runs = (1, n) if separate else (n, 1)
            costs.append(WINDOW_SECONDS + runs * self._window_cost(unknown, batch))
            generated[rows, cols] |= crop
            todo[rows, cols] = False
        total = float(sum(costs))
        starts = np.cumsum([0, *costs[:-1]]) / total
        return [(float(start), cost / total) for start, cost in zip(starts, costs, strict=True)]

    def _window_cost(self, unknown: np.ndarray, batch: int) -> float:
        from fractal_studio.sampling.cost import call_cost
        from fractal_studio.sampling.validation import resolved_iterations

        config = self.model.config
        if not unknown.any():
            return 0.0
        return call_cost(config, resolved_iterations(config, self.settings), 0, unknown[None], batch,
                         self.settings.guided)

    # -------------------------------------------------------------------------------- events
    def events(self) -> Iterator[EditProgress | EditResult]:
        from fractal_studio.sampling import Finished, sample

        # Which precision `auto` means is measured the first time a model of this shape and batch
        # runs here (sampling/precision.py): before the clock starts, so that the time-left
        # estimate does not count it as sampling.
        self.precision = self._precision()
        self.clock.begin()
        windows = self.plan.windows
        cancelled = False
        last, shown = None, None  # the latest sampler event and preview, shown while compositing
        for index, window in enumerate(windows):
            local = window.shifted(-self.area.left, -self.area.top)
            rows, cols = local.slices
            known = self.known[rows, cols].copy()
            groups = self._groups(rows, cols, known, index)
            runs = []
            for g, members in enumerate(groups):
                if self.guided:  # one batch: each candidate's own guide pixels (coarse to fine)
                    crop = np.stack([self.canvases[k][rows, cols] for k in members])
                else:
                    crop = self.canvases[members[0]][rows, cols].copy()
                seed = self._seed(index, members[0])
                request = replace(self.settings, canvas=crop, known=known, seed=seed, candidates=len(members))
                if self.vary is not None:
                    reference = self.vary.result.window_runs[index][g][1]
                    request = replace(request, reference=reference,
                                      detail_seed=zlib.crc32(f"{self.vary.detail_seed}/{seed}".encode()))
                preview_cache, pacer = None, PreviewPacer()
                for event in sample(self.model, request, self.cancel):
                    if isinstance(event, Finished):
                        for k, pixels in zip(members, event.candidates, strict=True):
                            self.canvases[k][rows, cols] = pixels
                        self._keep_bits(members, rows, cols, event.uncertainty)
                        runs.append((tuple(members), np.stack(event.candidates)))
                        cancelled = event.cancelled
                        break
                    start, width = self.shares[index]
                    self.clock.advance(start + width * (g + event.fraction) / len(groups))
                    # Candidate 0's pixels as they change, as often as the pacer allows.
                    now = time.perf_counter()
                    if 0 in members and (preview_cache is None or pacer.due(now)):
                        preview_cache = self._preview(local, event.canvas[members.index(0)])
                        pacer.made(now)
                    elif preview_cache is None:
                        preview_cache = self._preview(local, self.canvases[0][rows, cols])
                    last, shown = event, preview_cache
                    yield self._progress(index, event, *shown, self._sampling_eta())
                if cancelled:
                    break
            if cancelled:
                break
            self.known[rows, cols] |= self.in_image[rows, cols]
            self.window_runs.append(tuple(runs))
            self._average_samples(rows, cols)
        self.canvases = self.canvases[::self.samples]  # the samples of a candidate are now one
        if self.bits is not None:
            self.bits = self.bits[::self.samples]
        if self.lock is not None and not cancelled:
            self._lock_to_guides()
        bits = None
        made_as = tuple(range(len(self.canvases)))
        if not cancelled:
            self.clock.advance(1.0)
            if self.ranked:
                started = time.perf_counter()
                bits, made_as = self._rank()
                self.speeds.rank.measured(time.perf_counter() - started, self.rank_units)
            elif self.vary is not None:  # in the earlier result's order
                made_as = self.vary.result.made_as
                self.canvases = [self.canvases[k] for k in made_as]
                if self.bits is not None:
                    self.bits = [self.bits[k] for k in made_as]
        candidates = ()
        if self.compose or cancelled:
            report = last is not None and not cancelled
            if report:  # the candidates' colour matching can take a second or more
                yield self._progress(len(windows) - 1, last, *shown, self.compose_left(len(self.canvases)))
            started = time.perf_counter()
            crops = self._composite(self.canvases)
            self.speeds.compose.measured((time.perf_counter() - started) / len(crops), self.compose_units)
            if report:
                yield self._progress(len(windows) - 1, last, *shown, 0.0)
            candidates = CandidateImages(self.image, self.box, crops)
        yield EditResult(candidates=candidates, cancelled=cancelled, elapsed=self.clock.elapsed(),
                         metadata=self._metadata(), options=self.options, plan=self.plan, bits=bits,
                         window_runs=tuple(self.window_runs), made_as=made_as,
                         uncertainty=self._uncertainty())

    def _keep_bits(self, members: list[int], rows: slice, cols: slice, maps: list[np.ndarray] | None) -> None:
        """A window's bits of the pixels its run drew, for each of its candidates."""
        if self.bits is None or maps is None:
            return
        for k, drawn in zip(members, maps, strict=True):
            self.bits[k][rows, cols] = finest_drawn(drawn, self.bits[k][rows, cols])

    def _uncertainty(self) -> tuple[np.ndarray, ...] | None:
        """Each candidate's bits over the mask's box at the image's scale (editing/uncertainty.py)."""
        if self.bits is None:
            return None
        inside = self.mask[self.box.slices]
        maps = []
        for bits in self.bits:
            in_box = working_to_image(bits, (self.area.left, self.area.top), self.scale_xy, self.box)
            maps.append(np.where(inside, in_box, np.nan).astype(np.float32))
        return tuple(maps)

    # ------------------------------------------------------------------------------ progress
    def _sampling_eta(self) -> float | None:
        """Time left: the sampling still to do (TimeLeft), then the ranking and compositing of the
        candidates at this machine's measured speeds."""
        rank = self.rank_units * self.speeds.rank.seconds_per_unit
        return self.clock.sampling_eta(rank + self.compose_left(len(self.canvases)))

    def compose_left(self, candidates: int) -> float:
        return candidates * self.compose_units * self.speeds.compose.seconds_per_unit

    def _progress(self, index: int, event, rect: Rect, preview: np.ndarray,
                  eta: float | None) -> EditProgress:
        elapsed, fraction = self.clock.report(eta)
        return EditProgress(window=index + 1, windows=len(self.plan.windows), level=event.level,
                            step=event.step, steps=event.steps, fraction=fraction, rect=rect,
                            preview=preview, elapsed=elapsed, eta=eta, sampled=self.clock.sampled)

    def _rank(self) -> tuple[tuple[float, ...] | None, tuple[int, ...]]:
        """Orders the candidates best first by the model's likelihood of their fill: their bits, and
        where each was in the sampler's order."""
        if len(self.canvases) < 2:
            return None, tuple(range(len(self.canvases)))
        from fractal_studio.editing.ranking import fill_bits

        windows = [window.shifted(-self.area.left, -self.area.top) for window in self.plan.windows]
        bits = fill_bits(self.model, self.canvases, self.unknown_at_start & self.in_image, windows,
                         seed=int(self.options.seed), class_id=self.options.class_id)
        order = sorted(range(len(bits)), key=lambda k: bits[k])
        self.canvases = [self.canvases[k] for k in order]
        if self.bits is not None:
            self.bits = [self.bits[k] for k in order]
        return tuple(bits[k] for k in order), tuple(order)

    def _groups(self, rows, cols, known, window: int) -> list[list[int]]:
        """Candidates whose known window pixels are identical run as one batch (window 1: all);
        when varying detail, as the earlier run batched them."""
        if self.vary is not None:
            return [list(members) for members, _ in self.vary.result.window_runs[window]]
        if self.guided:
            return [list(range(len(self.canvases)))]
        groups: dict[bytes, list[int]] = {}
        for k, canvas in enumerate(self.canvases):
            key = canvas[rows, cols][known].tobytes()
            groups.setdefault(key, []).append(k)
        return list(groups.values())

    def _average_samples(self, rows: slice, cols: slice) -> None:
        """A window's pixels of each candidate's samples replaced by their mean (see samples)."""
        if self.samples == 1:
            return
        for first in range(0, len(self.canvases), self.samples):
            group = self.canvases[first:first + self.samples]
            mean = np.mean(np.stack([canvas[rows, cols] for canvas in group]).astype(np.float32), 0)
            mean = np.rint(mean).astype(np.uint8)
            for canvas in group:
                canvas[rows, cols] = mean
            if self.bits is not None:  # the mean pixel is as sure as its samples were on average
                bit_group = self.bits[first:first + self.samples]
                mean_bits = np.mean(np.stack([bits[rows, cols] for bits in bit_group]), 0)
                for bits in bit_group:
                    bits[rows, cols] = mean_bits

    def _lock_to_guides(self) -> None:
        """Each candidate's fill shifted by the smoothed difference to its guide, inside the hole:
        the detail this scale drew stays, a change of shade over several of its pixels does not."""
        import cv2

        hole = self.unknown_at_start & self.in_image
        for canvas, guide in zip(self.canvases, self.guide_areas, strict=True):
            shift = cv2.GaussianBlur(guide.astype(np.float32) - canvas.astype(np.float32), (0, 0), self.lock)
            locked = np.clip(np.rint(canvas.astype(np.float32) + shift), 0, 255).astype(np.uint8)
            canvas[hole] = locked[hole]

    def _seed(self, window: int, first: int) -> int:
        if window == 0 and first == 0:
            return int(self.options.seed)
        return zlib.crc32(f"{self.options.seed}/{window}/{first}".encode()) + (int(self.options.seed) << 32)

    # ------------------------------------------------------------------------------ pixels
    def _preview(self, local: Rect, window_pixels: np.ndarray) -> tuple[Rect, np.ndarray]:
        """Candidate 0 over the window, at image scale, outside-mask pixels from the image: only
        within the mask's box (nothing else can change), so that the preview of a window that
        covers a whole photo at a coarse scale stays as small as the edit."""
        window = local.shifted(self.area.left, self.area.top)
        rect = to_image_rect(window, self.scale_xy, self.size).intersect(self.box)
        if rect.empty:
            return rect, np.zeros((0, 0, 3), np.uint8)
        if self.native:
            generated = window_pixels[rect.top - window.top:rect.bottom - window.top,
                                      rect.left - window.left:rect.right - window.left]
        else:
            context = local.expanded(PREVIEW_CONTEXT).intersect(Rect(0, 0, self.area.width, self.area.height))
            work = self.canvases[0][context.slices].copy()
            inner = local.shifted(-context.left, -context.top)
            work[inner.slices] = window_pixels
            generated = upscale_region(work, (self.area.left + context.left, self.area.top + context.top),
                                       self.scale_xy, rect)
        preview = self.image[rect.slices].copy()
        inside = self.mask[rect.slices]
        preview[inside] = generated[inside]
        return rect, preview

    def _composite(self, canvases: list[np.ndarray]) -> list[np.ndarray]:
        """Each candidate's pixels inside the mask's bounding box (outside the mask: the input's)."""
        generated = [self._generated(canvas) for canvas in canvases]
        if self.options.seamless:  # one solve for all candidates: the region is the same
            generated = match_colours(self.image, self.mask, self.box, generated, self.blank)
        feather = int(self.options.feather)
        return [blend(self.image, self.mask, self.box, fill, feather, self.blank, self.weights)
                for fill in generated]

    def _generated(self, canvas: np.ndarray) -> np.ndarray:
        """The candidate's working canvas as the mask's box of the image (upscaled where the work
        scale is coarser)."""
        box = self.box
        work, origin = self._working_fill(canvas)
        if self.native:
            return work[box.shifted(-origin[0], -origin[1]).slices]
        return upscale_region(work, origin, self.scale_xy, box)

    def _working_fill(self, canvas: np.ndarray) -> tuple[np.ndarray, tuple[int, int]]:
        """The canvas's part inside the working image, softened where the fill is deeper than the
        model fills well (deblock.py), and that part's origin (x, y) in working coordinates."""
        if self.deep_weight is not None:
            canvas = soften_deep_fill(canvas, self.deep_weight, self.smallest_patch)
        w, h = self.plan.working_size
        inside = Rect(0, 0, w, h).intersect(self.area)
        return canvas[inside.shifted(-self.area.left, -self.area.top).slices], (inside.left, inside.top)

    def guides(self, size: tuple[int, int]) -> list[np.ndarray]:
        """Each finished candidate as the next coarse-to-fine scale's guide: the whole working image
        of `size` (w, h), the image downscaled with the hole (its pixels with any masked source
        pixel) filled from this scale's canvas, scaled up and colour matched there, and mixed with
        a classical continuation there where the model asks for one (continuation.py). The same as
        compositing at the image's size and downscaling, without the image-sized work (a stroke
        across a 12-MP photo)."""
        known = downscale(self.image, size)
        hole = working_unknown(self.mask, size)
        box = bounding_rect(hole)
        if box is None:
            return [known.copy() for _ in self.canvases]
        around = box.expanded(1).intersect(Rect(0, 0, *size))
        scale = (size[0] / self.plan.working_size[0], size[1] / self.plan.working_size[1])
        region = hole[around.slices]
        fills = []
        for canvas in self.canvases:
            work, origin = self._working_fill(canvas)
            fill = known[around.slices].copy()
            fill[region] = upscale_region(work, origin, scale, around)[region]
            fills.append(fill)
        if self.options.seamless:
            empty = None if self.blank is None else working_unknown(self.blank, size)[around.slices]
            fills = seamless_fills(fills, known[around.slices], region, empty)
        if self.classical is not None:
            fills = mixed_guides(fills, continuation(known, hole, around), region, self.classical)
        guides = []
        for fill in fills:
            guide = known.copy()
            guide[around.slices] = fill
            guides.append(guide)
        return guides

    def _precision(self) -> str:
        """The precision the windows ran at (what `auto` chose is measured once and cached)."""
        from fractal_studio.sampling.precision import sampling_precision

        request = self.settings
        return sampling_precision(self.model, self.model.fake_latent.device, request.precision, request.rows)

    def _metadata(self) -> dict[str, str]:
        return edit_record(self.model.config, self.options, self.settings, self.plan, self.size, self.mask,
                           self.precision, self.model_hash, self.weights)
