"""One edit of one image, as the single-image commands, `batch` and the HTTP server run it.

    task = Task("outpaint", extend=(0, 0, 64, 0)).checked()
    for event in edit_image(loaded, Document.open("a.jpg"), task, options, model_file="photo_64"):
        ...                              # EditProgress events, then one Edited (the pictures and records)

A task is what changes on the canvas before the run (a mask, a wider canvas, an uncrop); the
options (editing/options.py) are how the run goes. Every check is a one-line UserError in the
words of the CLI's options (--extend, --scale), which the server quotes as they are.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fractal_studio.editing.document import Document
from fractal_studio.editing.engine import EditProgress, EditResult
from fractal_studio.editing.imageio import MAX_PIXELS, MAX_SIDE
from fractal_studio.editing.options import EditOptions
from fractal_studio.editing.session import EditSession, LoadedModel
from fractal_studio.errors import TooLarge, UserError

TASKS = ("inpaint", "outpaint", "uncrop", "edit")
MASKED = ("inpaint", "edit")  # the tasks that take a mask
# Past this the photo is under a hundredth of the canvas's side: the result is all generated (and a
# factor such as 1e308 would overflow the canvas's size before the size check could refuse it).
MAX_UNCROP_SCALE = 100


class Cancelled(UserError):
    """The run was cancelled before it finished; nothing was written."""


@dataclass(frozen=True)
class Task:
    """What an edit does to the canvas: `kind` one of TASKS; `extend` (left, top, right, bottom)
    pixels for outpaint; `scale` (> 1) for uncrop."""

    kind: str
    extend: tuple[int, int, int, int] | None = None
    scale: float | None = None

    @property
    def masked(self) -> bool:
        return self.kind in MASKED

    def checked(self) -> Task:
        if self.kind not in TASKS:
            raise UserError(f"unknown task {self.kind!r}; tasks are {', '.join(TASKS)}")
        if self.kind == "outpaint":
            extend = self.extend
            if extend is None or len(extend) != 4 or any(isinstance(v, bool) or not isinstance(v, int)
                                                         for v in extend):
                raise UserError("--extend expects 4 whole numbers separated by commas, e.g. 0,0,256,0")
            if any(v < 0 for v in extend):
                raise UserError(f"--extend values must be >= 0, got {','.join(map(str, extend))}")
            if not any(extend):
                raise UserError("--extend adds nothing; give the pixels to add, e.g. 0,0,256,0")
        if self.kind == "uncrop":
            scale = self.scale
            if isinstance(scale, bool) or not isinstance(scale, int | float):
                raise UserError(f"--scale must be a number greater than 1 (e.g. 1.5 or 2), got {scale!r}")
            if not (math.isfinite(scale) and 1 < scale <= MAX_UNCROP_SCALE):
                raise UserError(f"--scale must be greater than 1 and at most {MAX_UNCROP_SCALE} "
                                f"(e.g. 1.5 or 2), got {scale:g}")
        return self

    def check_size(self, width: int, height: int) -> None:
        """A result of an image of this size must be one this program can open again."""
        if self.kind == "outpaint":
            left, top, right, bottom = self.extend
            check_result_size(width + left + right, height + top + bottom, "--extend")
        elif self.kind == "uncrop":
            check_result_size(math.ceil(width * self.scale), math.ceil(height * self.scale), "--scale")

    def record(self) -> dict[str, str]:
        """The task's own fields of the PNG record."""
        record = {"task": self.kind}
        if self.kind == "outpaint":
            record["extend"] = ",".join(map(str, self.extend))
        if self.kind == "uncrop":
            record["uncrop_scale"] = f"{self.scale:g}"
        return record


def check_result_size(width: int, height: int, option: str) -> None:
    """A result must be an image this program can open again (and that fits in memory)."""
    if width > MAX_SIDE or height > MAX_SIDE or width * height > MAX_PIXELS:
        raise TooLarge(f"{option} would make a {width}x{height} image; results are limited to "
                        f"{MAX_SIDE} pixels a side and {MAX_PIXELS // 1_000_000} megapixels (the largest "
                        "image Fractal Studio opens)")


def prepare(session: EditSession, task: Task, mask: np.ndarray | None = None, mask_name: str = "the mask") \
        -> None:
    """Changes the session's document as `task` says: the mask added to the transparent pixels
    (which are generated too), the canvas extended, or the image uncropped."""
    doc = session.doc
    task.check_size(*doc.size)
    if task.masked:
        if mask is None:
            raise UserError(f"{task.kind} needs a mask")
        if mask.shape != doc.mask.shape:
            raise UserError(f"{mask_name} is {mask.shape[1]}×{mask.shape[0]} but the image is "
                            f"{doc.size[0]}×{doc.size[1]}; the mask must have the image's size.")
        session.set_mask(doc.mask | mask, "Mask file")
        if not doc.mask.any():
            raise UserError(f"{mask_name} is all black: nothing to generate (white = generate)")
    elif task.kind == "outpaint":
        session.extend(*task.extend)
    elif task.kind == "uncrop":
        session.uncrop(task.scale)


def records(result: EditResult, task: Task, model_file: str,
            source: str | None = None) -> list[dict[str, str]]:
    """Each candidate's PNG record: the run's, the task's, which candidate it is and its bits."""
    metadata = dict(result.metadata)
    metadata.update(task.record())
    metadata["model_file"] = model_file
    if source is not None:
        metadata["source"] = source
    count = len(result.candidates)
    out = []
    for k in range(count):
        meta = dict(metadata)
        meta["candidate"] = f"{k + 1}/{count}"
        if result.bits is not None:  # best first by the model's likelihood of the fill
            meta["fill_bits"] = f"{result.bits[k]:.4f}"
        out.append(meta)
    return out


@dataclass(frozen=True)
class Edited:
    """A finished edit: each candidate's pixels with its record, best first, and the run's result."""

    pictures: list[tuple[np.ndarray, dict[str, str]]]
    result: EditResult


def edit_image(loaded: LoadedModel, doc: Document, task: Task, options: EditOptions,
               mask: np.ndarray | None = None, *, cancel: threading.Event | None = None,
               mask_name: str = "the mask", source: str | None = None) -> Iterator[EditProgress | Edited]:
    """Checks everything first (UserError), then returns the run's events: EditProgress events,
    then one Edited. A cancel (the event set) ends it with Cancelled instead."""
    session = EditSession()
    session.loaded = loaded
    session.set_document(doc)
    prepare(session, task, mask, mask_name)
    run = session.start_run(options)
    if cancel is not None:
        run.cancel = cancel
    return _events(session, run, task, Path(loaded.path).name, source)


def _events(session: EditSession, run, task: Task, model_file: str, source: str | None):
    for event in run.events():
        if not isinstance(event, EditResult):
            yield event
    session.finish_run(run)
    result = run.result
    if result is None or result.cancelled:
        raise Cancelled("the run was cancelled; nothing was written")
    pictures = list(zip(result.candidates, records(result, task, model_file, source), strict=True))
    yield Edited(pictures, result)
