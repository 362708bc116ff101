"""One editing session, the same for the app and the CLI, without Qt.

    session = EditSession()
    session.open("photo.jpg")
    session.set_model(LoadedModel.load("models/photo_64.safetensors"))
    session.set_mask(mask)                       # or paint(), grow_mask(), rectangle(), ...
    run = session.start_run(EditOptions(candidates=3))
    for event in run.events(): ...               # in a worker thread: EditProgress..., EditResult
    session.finish_run(run)                      # keeps the candidates if `run` is still current
    session.apply(0); session.undo(); session.export("out.png")

The session owns the document (image, canvas, the mask as 8-bit coverage), the loaded model, the
current run with its candidates, and the undo history; one run at a time. A run works on copies
taken when it starts, so the document can be drawn on while it runs, and a run that is no longer
current (cancelled, replaced) can never hand its events or result to another.
Listeners (`session.listen(callback)`) hear `callback(kind, rect)` after each change: kind "mask"
(only `rect` of the coverage changed), "pins" (only `rect` of the pins changed), "pixels" (the
image changed only inside `rect`, the mask anywhere; same size), "document" (anything may have
changed), "run" (candidates came or went), "model" (another model, or the same on another
device, is loaded; rect None).
"""

from __future__ import annotations

import itertools
import os
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace

import cv2
import numpy as np

from fractal_studio.editing.document import Document
from fractal_studio.editing.engine import EditOptions, EditResult, Vary, run_edit
from fractal_studio.editing.history import ApplyStep, ExtendStep, History, MaskStep, PinStep, SnapshotStep
from fractal_studio.editing.timing import EditSpeeds
from fractal_studio.editing.uncertainty import DEFAULT_QUANTILE, full_map, image_patch, unsure_mask
from fractal_studio.editing.windows import Rect, bounding_rect
from fractal_studio.errors import UserError

Listener = Callable[[str, Rect | None], None]
_RUN_NUMBERS = itertools.count(1)
PIN_RADIUS = 2.0  # a pin dot's radius in image pixels: a 5-pixel dot, small beside the model's patches


@dataclass(frozen=True)
class LoadedModel:
    """A model as a session holds it: where it came from, its file hash and where it lives now."""

    path: str
    model: object  # FractalModel
    sha256: str
    device: object  # torch.device

    @classmethod
    def load(cls, path, device: str = "auto") -> LoadedModel:
        """Loads and prepares a model file (slow: call it off the UI thread)."""
        from fractal_studio.devices import pick_device
        from fractal_studio.model.weights import file_hash, load_model
        from fractal_studio.sampling import prepare_sampling

        where = pick_device(device)
        model = load_model(path, where)
        prepare_sampling(model)  # the CPU twin, built now rather than at the first run
        return cls(path=os.fspath(path), model=model, sha256=file_hash(path), device=where)

    def on(self, device: str) -> LoadedModel:
        """The same model on another device (moved in place; call it between runs)."""
        from fractal_studio.devices import pick_device

        where = pick_device(device)
        if where == self.device:
            return self
        self.model.to(where)
        return replace(self, device=where)


@dataclass
class Run:
    """One generation: the inputs as they were when it started, its cancel flag and its result."""

    number: int
    loaded: LoadedModel
    options: EditOptions
    image: np.ndarray
    mask: np.ndarray
    blank: np.ndarray
    weights: np.ndarray | None
    rect: Rect  # where candidates can differ from the document
    cancel: threading.Event = field(default_factory=threading.Event)
    result: EditResult | None = None
    vary: Vary | None = None  # "vary detail" of an earlier run (engine.Vary)
    # The session's measured ranking and compositing speeds, which the time left counts on
    speeds: EditSpeeds = field(default_factory=EditSpeeds)
    pins: np.ndarray | None = None  # RGBA, opaque = kept exactly (editing/pins.py)
    # Each candidate's bits per pixel are kept (EditResult.uncertainty) for View > Uncertainty and
    # re-rolls: recording them costs too little to leave out (sampling/request.py).
    uncertainty: bool = True
    # A re-roll (EditSession.reroll_unsure): the run whose candidate `rerolled` it draws again in
    # part; once finished, that run with the new candidate added (undo goes back to it).
    rerolled_from: Run | None = None
    rerolled: int | None = None

    def events(self) -> Iterator:
        """run_edit's events (EditProgress..., then the EditResult); the result is kept on the run."""
        events = run_edit(self.loaded.model, self.image, self.mask, self.options, cancel=self.cancel,
                          model_hash=self.loaded.sha256, blank=self.blank, weights=self.weights,
                          vary=self.vary, speeds=self.speeds, pins=self.pins, uncertainty=self.uncertainty)
        for event in events:
            if isinstance(event, EditResult):
                self.result = event
            yield event


class EditSession:
    def __init__(self):
        self.document: Document | None = None
        self.loaded: LoadedModel | None = None
        self.run: Run | None = None  # the current run: running, or finished with its candidates
        self.running = False
        self.history = History()
        self.revision = 0  # bumps on every change of the document (autosave compares it)
        self._exported_at = None  # the history step that was last when the image was exported
        self._listeners: list[Listener] = []
        self.speeds = EditSpeeds()  # measured by this session's runs, for their time left

    # ---------------------------------------------------------------------------- listeners
    def listen(self, callback: Listener) -> None:
        self._listeners.append(callback)

    def _changed(self, kind: str, rect: Rect | None = None) -> None:
        if kind != "run":
            self.revision += 1
        for callback in self._listeners:
            callback(kind, rect)

    # ----------------------------------------------------------------------------- document
    def open(self, path) -> Document:
        doc = Document.open(path)
        self.set_document(doc)
        return doc

    def set_document(self, doc: Document, blank: np.ndarray | None = None) -> None:
        self._require_idle()
        if blank is not None:
            doc.blank = np.array(blank, bool)  # a new canvas or a restored session: nothing there yet
        self.document = doc
        self.history.clear()
        self.discard()
        self._exported_at = None
        self._changed("document")

    @property
    def doc(self) -> Document:
        if self.document is None:
            raise UserError("no image is open")
        return self.document

    @property
    def empty(self) -> np.ndarray | None:
        """Canvas pixels with no content yet (new outpainting area), or None."""
        blank = None if self.document is None else self.document.blank
        return blank if blank is not None and blank.any() else None

    @property
    def unsaved(self) -> bool:
        """Whether the image differs from when it was opened or last exported: an applied result, a
        larger canvas, an uncrop. Mask strokes alone do not count (they are not in the PNG), and
        undoing back to the exported state counts as unchanged."""
        if self.document is None:
            return False
        between = self.history.steps_to(self._exported_at)
        return between is None or any(not isinstance(step, MaskStep) for step in between)

    # --------------------------------------------------------------------------------- mask
    def paint(self, rect: Rect, coverage: np.ndarray, text: str = "Brush stroke") -> None:
        """A stroke ended: `coverage` (uint8) is the new coverage inside `rect`."""
        self.set_coverage(coverage, text, rect)

    def set_coverage(self, coverage: np.ndarray, text: str, rect: Rect | None = None) -> None:
        """New coverage for the whole image, or for `rect` only (undoable)."""
        self._require_idle()
        step = MaskStep.between(self.doc, coverage, text, rect)
        if step is not None:
            self._push(step)

    def set_mask(self, mask: np.ndarray, text: str = "Set mask") -> None:
        """A hard mask (True = generate); soft coverage is kept where the mask stays on."""
        if mask.shape != self.doc.mask.shape or mask.dtype != bool:
            raise UserError(f"the mask must be a bool array of the image's size {self.doc.size[0]}×"
                            f"{self.doc.size[1]}, got {mask.dtype} {mask.shape}")
        current = self.doc.coverage
        self.set_coverage(np.where(mask, np.where(current > 0, current, 255), 0).astype(np.uint8), text)

    def clear_mask(self) -> None:
        self.set_mask(np.zeros_like(self.doc.mask), "Clear mask")

    def invert_mask(self) -> None:
        self.set_mask(~self.doc.mask, "Invert mask")

    def grow_mask(self, pixels: int) -> None:
        """Dilates (pixels > 0) or erodes (pixels < 0) the mask with a round brush."""
        self.set_mask(grown(self.doc.mask, int(pixels)), "Grow mask" if pixels > 0 else "Shrink mask")

    def rectangle(self, rect: Rect, erase: bool = False) -> None:
        mask = self.doc.mask.copy()
        mask[rect.intersect(self.doc.rect).slices] = not erase
        self.set_mask(mask, "Erase rectangle" if erase else "Mask rectangle")

    # --------------------------------------------------------------------------------- pins
    def pin(self, centre: tuple[float, float], colour: tuple[int, int, int], radius: float = PIN_RADIUS,
            erase: bool = False) -> Rect | None:
        """Pins a round dot of `colour` (R, G, B) at `centre` (image coordinates), only where the
        mask is on (outside it a pin would mean nothing: those pixels are kept anyway); `erase`
        takes the pins under the dot away instead. Undoable; returns the box that changed, or None."""
        doc = self.doc
        x, y = centre
        reach = int(np.ceil(radius))
        box = Rect.spanning(int(np.floor(x)) - reach, int(np.floor(y)) - reach,
                            int(np.floor(x)) + reach + 1, int(np.floor(y)) + reach + 1).intersect(doc.rect)
        if box.empty:
            return None
        ys, xs = np.mgrid[box.top:box.bottom, box.left:box.right]
        dot = np.hypot(xs + 0.5 - x, ys + 0.5 - y) <= radius + 0.5
        pins = doc.pins[box.slices].copy() if doc.pins is not None else np.zeros((*dot.shape, 4), np.uint8)
        if erase:
            pins[dot] = 0
        else:
            dot &= doc.mask[box.slices]
            pins[dot] = (*(int(c) for c in colour), 255)
        step = PinStep.between(doc, pins, box, "Remove pins" if erase else "Pin")
        if step is None:
            return None
        self._push(step)
        return box

    def clear_pins(self) -> None:
        doc = self.doc
        if doc.pins is not None and doc.pins.any():
            self._push(PinStep(doc.rect, doc.pins.copy(), np.zeros_like(doc.pins), "Clear pins"))

    # --------------------------------------------------------------------------- the canvas
    def extend(self, left: int, top: int, right: int, bottom: int) -> None:
        """Grows the canvas; the new area is masked and blank (to be generated)."""
        self._require_idle()
        self._push(ExtendStep.run(self.doc, (int(left), int(top), int(right), int(bottom))), done=True)

    def uncrop(self, scale: float) -> None:
        self._require_idle()
        before = self.doc.snapshot()
        self.doc.uncrop(scale)
        self._push(SnapshotStep(before, self.doc.snapshot(), f"Uncrop ×{float(scale):g}"), done=True)

    # ------------------------------------------------------------------------------- model
    def set_model(self, loaded: LoadedModel | None) -> None:
        """The model the next runs use (None: none). Refused while a run is going (UserError): the
        run keeps the model it started with. The candidates of an earlier run stay, as made."""
        self._require_idle()
        if loaded is self.loaded:
            return
        self.loaded = loaded
        self._changed("model")

    # -------------------------------------------------------------------------------- runs
    def start_run(self, options: EditOptions) -> Run:
        """Checks the inputs and makes the next run (current from now on); run `run.events()` next.
        Raises UserError for anything the user must fix first."""
        if self.loaded is None:
            raise UserError("no model is loaded")
        self._require_idle()
        doc = self.doc
        if not doc.mask.any():
            raise UserError("the mask is empty: paint over the pixels to generate, drag a canvas border "
                            "outward to outpaint, or use Uncrop")
        self.discard()
        rect = bounding_rect(doc.mask).expanded(int(options.feather) + 1).intersect(doc.rect)
        # The image is shared, not copied: the document replaces its image array, never writes into it.
        run = Run(number=next(_RUN_NUMBERS), loaded=self.loaded, options=options, image=doc.image,
                  mask=doc.mask.copy(), blank=doc.blank.copy(), weights=doc.blend_weights(), rect=rect,
                  speeds=self.speeds, pins=None if doc.pins is None else doc.pins.copy())
        self.run, self.running = run, True
        return run

    def vary_detail(self, detail_seed: int) -> Run:
        """The next run: the finished run's candidates again with their layout kept and new detail
        (engine.Vary), on the same inputs; they replace the candidates when it ends."""
        earlier = self.run
        if earlier is None or self.running or earlier.result is None or earlier.result.cancelled:
            raise UserError("vary detail needs the candidates of a finished run")
        if earlier.image is not self.doc.image:
            raise UserError("the image changed since these candidates were made; generate again")
        run = Run(number=next(_RUN_NUMBERS), loaded=earlier.loaded, options=earlier.options,
                  image=earlier.image, mask=earlier.mask, blank=earlier.blank, weights=earlier.weights,
                  rect=earlier.rect, vary=Vary(earlier.result, int(detail_seed)), speeds=self.speeds,
                  pins=earlier.pins)
        self.run, self.running = run, True
        return run

    def finish_run(self, run: Run) -> bool:
        """The run's events are over; True if it was current and left candidates to choose from."""
        if run is not self.run:
            return False
        self.running = False
        if run.rerolled_from is not None:  # the earlier candidates stay, with the new one if it came
            finished = run.result is not None and not run.result.cancelled
            self.run = _with_reroll(run) if finished else run.rerolled_from
            self._changed("run", run.rect)
            return self.run is not None
        if run.result is None or run.result.cancelled:
            self.run = None
            self._changed("run", run.rect)
            return False
        self._changed("run", run.rect)
        return True

    def reroll_unsure(self, index: int, quantile: float = DEFAULT_QUANTILE,
                      threshold: float | None = None) -> Run:
        """The next run: candidate `index`'s unsure patches drawn again (editing/uncertainty.py), the
        rest of the candidate known; when it ends, its fill is added as a new candidate (undo takes
        it away again). The patches are the model's smallest pixel patch at the edit's working scale
        whose mean bits are above `threshold`, by default the `quantile` of the candidate's patches."""
        earlier = self.run
        if earlier is None or self.running or earlier.result is None or earlier.result.cancelled:
            raise UserError("re-rolling unsure parts needs the candidates of a finished run")
        result = earlier.result
        if result.uncertainty is None:
            raise UserError("these candidates have no recorded uncertainty; generate again")
        if not 0 <= index < len(result.candidates):
            raise UserError(f"there is no candidate #{index + 1} to re-roll")
        if earlier.image is not self.doc.image:
            raise UserError("the image changed since these candidates were made; generate again")
        bits = full_map(result.uncertainty[index], result.candidates.box, earlier.mask.shape)
        drawn = earlier.mask & ~np.isnan(bits)  # pins and other known pixels stay
        hole = unsure_mask(bits, drawn, self._reroll_patch(earlier), quantile, threshold)
        if not hole.any():
            raise UserError("no part of this candidate is above the uncertainty threshold")
        options = replace(earlier.options, candidates=1,
                          seed=(int(earlier.options.seed) + 7919 * (len(result.candidates) + 1)) % 2**32)
        run = Run(number=next(_RUN_NUMBERS), loaded=earlier.loaded, options=options,
                  image=result.candidates[index], mask=hole, blank=np.zeros_like(earlier.blank), weights=None,
                  rect=earlier.rect, speeds=self.speeds, rerolled_from=earlier, rerolled=index)
        self.run, self.running = run, True
        return run

    @staticmethod
    def _reroll_patch(run: Run) -> int:
        """The re-roll's patch in image pixels: the model's smallest at the run's working scale."""
        plan = run.result.plan
        scale = 1.0 if plan is None else run.image.shape[1] / plan.working_size[0]
        return image_patch(run.loaded.model.config.patch_sizes, scale)

    def cancel(self) -> None:
        if self.run is not None and self.running:
            self.run.cancel.set()

    @property
    def candidates(self):
        """The current run's candidates (full images on access), or an empty list."""
        if self.run is None or self.running or self.run.result is None:
            return []
        return self.run.result.candidates

    def apply(self, index: int) -> None:
        """Makes candidate `index` the document's image (undoable); the candidates are dropped."""
        if not self.candidates or not 0 <= index < len(self.candidates):
            raise UserError(f"there is no candidate #{index + 1} to apply")
        run = self.run
        self._push(ApplyStep.run(self.doc, run.result, index), done=True)
        self.run = None
        self._changed("run", run.rect)

    def discard(self) -> None:
        """Drops the finished run's candidates (a running run is cancelled first)."""
        if self.run is None:
            return
        self.cancel()
        rect = self.run.rect
        self.run, self.running = None, False
        self._changed("run", rect)

    def before_last_apply(self) -> tuple[Rect, np.ndarray] | None:
        """(rect, pixels) of the image inside the area the last applied result changed, as they were
        before it, when that apply is the last step; else None (for comparing with the original)."""
        step = self.history.last
        if not isinstance(step, ApplyStep) or step.rect.empty:
            return None
        return step.rect, step.before[0]

    def restore_history(self, history: History) -> bool:
        """Takes an undo history an autosave kept, after checking on a copy of the document that
        its steps undo and redo back to this very state; False (and no history) if they do not."""
        doc = self.doc
        trial = Document(doc.image, path=doc.path)
        trial.restore(doc.snapshot())
        try:
            for _ in range(len(history.done)):
                history.undo(trial)
            for _ in range(len(history.undone)):
                history.redo(trial)
        except (ValueError, IndexError, TypeError, UserError):
            return False
        if not (np.array_equal(trial.image, doc.image) and np.array_equal(trial.coverage, doc.coverage)
                and np.array_equal(trial.snapshot().pins, doc.snapshot().pins)):
            return False
        self.history = history
        self._changed("document")
        return True

    # ------------------------------------------------------------------------------- undo
    def undo(self) -> bool:
        return self._travel(self.history.undo)

    def redo(self) -> bool:
        return self._travel(self.history.redo)

    def _travel(self, move) -> bool:
        """Undo or redo (`move`), after dropping any candidates; False when there is nothing to do."""
        self._require_idle()
        if move == self.history.undo and self.run is not None and self.run.rerolled_from is not None:
            self.run = self.run.rerolled_from  # a re-roll's candidate taken away again
            self._changed("run", self.run.rect)
            return True
        self.discard()
        step = move(self.doc) if self.document is not None else None
        if step is not None:
            self._announce(step)
        return step is not None

    def _push(self, step, done: bool = False) -> None:
        """Records a step; `done`: it already changed the document (else it is applied now)."""
        if not done:
            step.redo(self.doc)
        self.history.push(step)
        self._announce(step)

    def _announce(self, step) -> None:
        if isinstance(step, MaskStep):
            self._changed("mask", step.rect)
        elif isinstance(step, ApplyStep):
            self._changed("pixels", step.rect)
        elif isinstance(step, PinStep):
            self._changed("pins", step.rect)
        else:
            self._changed("document")

    def _require_idle(self) -> None:
        if self.running:
            raise UserError("a run is in progress: wait for it or cancel it first")

    # ----------------------------------------------------------------------------- export
    def metadata(self, candidate: int | None = None) -> dict[str, str]:
        """The generation record for an export: of `candidate` of the current run, else of the
        last applied result."""
        from fractal_studio import __version__

        record = {}
        if candidate is not None and self.candidates:
            record = dict(self.run.result.metadata)
            record["candidate"] = f"{candidate + 1}/{len(self.candidates)}"
        elif self.document is not None and self.document.applied is not None:
            record = dict(self.document.applied)
        record.setdefault("software", f"fractal-studio {__version__}")
        return {str(k): str(v) for k, v in record.items()}

    def pixels(self, candidate: int | None = None) -> np.ndarray:
        """The document's image, or candidate `candidate` of the current run."""
        if candidate is not None and self.candidates:
            return self.candidates[candidate]
        return self.doc.image

    def export(self, path, candidate: int | None = None, overwrite_source: bool = False) -> None:
        """Writes a PNG (atomic) with its generation record; never over the opened file unless asked."""
        from fractal_studio.editing.imageio import save_png

        save_png(path, self.pixels(candidate), self.metadata(candidate), source=self.doc.path,
                 overwrite_source=overwrite_source)
        if candidate is None:
            self._exported_at = self.history.last


def _with_reroll(run: Run) -> Run:
    """The run `run` re-rolled a candidate of, with the re-rolled candidate added last: its pixels
    the re-roll's (the candidate outside the re-rolled patches), its bits the candidate's with the
    re-roll's in those patches. Its bits per value (for the earlier candidates only) are dropped."""
    from fractal_studio.editing.candidates import CandidateImages

    earlier, made = run.rerolled_from.result, run.result
    box = earlier.candidates.box
    crops = [*earlier.candidates.crops, made.candidates[0][box.slices]]
    bits = earlier.uncertainty[run.rerolled].copy()
    drawn = full_map(made.uncertainty[0], made.candidates.box, run.mask.shape)[box.slices]
    redrawn = run.mask[box.slices]
    bits[redrawn] = drawn[redrawn]
    result = replace(earlier, candidates=CandidateImages(earlier.candidates.base, box, crops), bits=None,
                     uncertainty=(*earlier.uncertainty, bits), made_as=(), layouts=(), window_runs=())
    return replace(run.rerolled_from, result=result, rerolled_from=run.rerolled_from, rerolled=run.rerolled)


def grown(mask: np.ndarray, pixels: int) -> np.ndarray:
    """The mask dilated (pixels > 0) or eroded (pixels < 0) by a round kernel."""
    if pixels == 0:
        return mask.copy()
    size = 2 * abs(pixels) + 1
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (size, size))
    source = mask.astype(np.uint8)
    out = cv2.dilate(source, kernel) if pixels > 0 else cv2.erode(source, kernel, borderValue=1)
    return out.astype(bool)
