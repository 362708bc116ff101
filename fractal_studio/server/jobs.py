"""The server's jobs and its one worker: edits run one at a time, in the order they came.

No HTTP here (server/app.py answers requests) and no model maths: a job is an uploaded image
(and mask) in a folder of its own, a Task and EditOptions; the worker runs it with the same step
as `batch` (editing/tasks.edit_image) and writes its results, with their records, into that folder.

    worker = Worker(Settings(model="photo_64"), queue_size=8)
    job = worker.submit(Job.new(folder, Task("inpaint"), options, class_text=None, model=path))
    job.finished.wait(); job.state, job.results, job.error

A job's progress is kept as its latest event only (and its latest preview), numbered, so any
number of listeners can follow it and memory stays the same however long it runs.
"""

from __future__ import annotations

import contextlib
import io
import logging
import queue
import secrets
import shutil
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

from fractal_studio.editing.options import EditOptions
from fractal_studio.editing.tasks import Cancelled, Edited, Task, edit_image
from fractal_studio.errors import UserError
from fractal_studio.untrusted import printable

log = logging.getLogger(__name__)

QUEUED, RUNNING, DONE, FAILED, CANCELLED = "queued", "running", "done", "failed", "cancelled"
FINAL = (DONE, FAILED, CANCELLED)
PREVIEW_SECONDS = 0.5  # at most two previews a second per job (a PNG each)


class QueueFull(Exception):
    """The worker has `queue_size` jobs waiting: the client should come back later."""


@dataclass(frozen=True)
class Settings:
    model: str | None = None  # the default model (a name or a path), as --model
    device: str = "auto"
    threads: int | None = None


@dataclass(eq=False)
class Job:
    id: str
    folder: Path  # the uploads ("image", "mask") and, when done, the results (result-1.png …)
    task: Task
    options: EditOptions
    class_text: str | None
    model: Path
    doc: object = None  # the decoded upload (editing.document.Document), until the job has run
    mask: object = None  # its bool mask (masked tasks)
    state: str = QUEUED
    error: str | None = None
    status: int = 400  # the HTTP status an error answers with (413 for a size limit)
    results: list[Path] = field(default_factory=list)
    bits: tuple[float, ...] | None = None
    cancel: threading.Event = field(default_factory=threading.Event)
    finished: threading.Event = field(default_factory=threading.Event)
    progress: dict | None = None  # the latest EditProgress, as JSON
    preview: tuple[tuple[int, int, int, int], bytes] | None = None  # (x, y, w, h), PNG
    preview_at: float = 0.0
    serial: int = 0  # bumps with every change a listener should see
    created: float = field(default_factory=time.monotonic)
    ended: float | None = None
    keep: bool = True  # kept after it ends, for its result (a job of the one-call endpoints is not)

    @classmethod
    def new(cls, folder: Path, task: Task, options: EditOptions, class_text: str | None, model: Path,
            **kwargs) -> Job:
        return cls(secrets.token_hex(8), folder, task, options, class_text, model, **kwargs)

    def describe(self) -> dict:
        out = {"id": self.id, "task": self.task.kind, "state": self.state}
        if self.progress is not None:
            out["progress"] = self.progress
        if self.error is not None:
            out["error"] = self.error
        if self.state == DONE:
            out["candidates"] = len(self.results)
            if self.bits is not None:
                out["fill_bits"] = list(self.bits)
        return out

    def _end(self, state: str, error: str | None = None, status: int = 400) -> None:
        self.state, self.error, self.status = state, error, status
        self.ended = time.monotonic()
        self.serial += 1
        self.finished.set()


class Worker:
    """One thread that runs the queued jobs in order on the device; the loaded models are cached."""

    def __init__(self, settings: Settings, queue_size: int = 8, keep_jobs: int = 64,
                 keep_seconds: float = 600.0):
        self.settings = settings
        self.queue: queue.Queue[Job | None] = queue.Queue(maxsize=queue_size)
        self.jobs: OrderedDict[str, Job] = OrderedDict()
        self.keep_jobs, self.keep_seconds = keep_jobs, keep_seconds
        self.lock = threading.Lock()
        self.running: Job | None = None
        self.mean_seconds = 5.0  # a running mean of an edit's time, for Retry-After
        self.models: OrderedDict[Path, object] = OrderedDict()  # path -> LoadedModel, the last 2
        self.thread = threading.Thread(target=self._loop, name="fractal-studio-worker", daemon=True)
        self.thread.start()

    # ------------------------------------------------------------------------------- jobs
    def submit(self, job: Job) -> Job:
        with self.lock:
            self._forget_old()
            try:
                self.queue.put_nowait(job)
            except queue.Full:
                raise QueueFull from None
            self.jobs[job.id] = job
        return job

    def get(self, job_id: str) -> Job | None:
        with self.lock:
            return self.jobs.get(job_id)

    def cancel(self, job: Job) -> None:
        """Stops a job: a queued one never runs, a running one stops at the engine's next check."""
        job.cancel.set()
        with self.lock:
            if job.state == QUEUED:
                job._end(CANCELLED, "the run was cancelled; nothing was written", 409)

    def forget(self, job: Job) -> None:
        """Drops a job that has ended (and its folder of uploads and results)."""
        with self.lock:
            if self.jobs.get(job.id) is job and job.state in FINAL:
                del self.jobs[job.id]
                shutil.rmtree(job.folder, ignore_errors=True)

    def device_name(self) -> str:
        from fractal_studio.devices import pick_device

        return str(pick_device(self.settings.device))

    def waiting(self) -> int:
        return self.queue.qsize()

    def _forget_old(self) -> None:
        """Ended jobs beyond the newest `keep_jobs`, or older than `keep_seconds`, are dropped."""
        now = time.monotonic()
        ended = [job for job in self.jobs.values() if job.state in FINAL]
        for index, job in enumerate(ended):
            old = job.ended is not None and now - job.ended > self.keep_seconds
            if old or not job.keep or len(ended) - index > self.keep_jobs:
                del self.jobs[job.id]
                shutil.rmtree(job.folder, ignore_errors=True)

    def close(self, timeout: float = 10.0) -> None:
        """Cancels every job and stops the thread (the server is shutting down)."""
        with self.lock:
            jobs = list(self.jobs.values())
        for job in jobs:
            self.cancel(job)
        while True:  # make room for the stop sign: the queued jobs are cancelled anyway
            try:
                self.queue.put_nowait(None)
                break
            except queue.Full:
                with contextlib.suppress(queue.Empty):
                    self.queue.get_nowait()
        self.thread.join(timeout)
        with self.lock:
            for job in list(self.jobs.values()):
                shutil.rmtree(job.folder, ignore_errors=True)
            self.jobs.clear()

    # ------------------------------------------------------------------------------ running
    def _loop(self) -> None:
        while True:
            job = self.queue.get()
            if job is None:
                return
            if job.cancel.is_set():
                job.doc = job.mask = None
                with self.lock:
                    if job.state == QUEUED:
                        job._end(CANCELLED, "the run was cancelled; nothing was written", 409)
                continue
            with self.lock:
                job.state, self.running = RUNNING, job
                job.serial += 1
            try:
                self._run(job)
            except Cancelled as error:
                job._end(CANCELLED, str(error), 409)
            except UserError as error:
                job._end(FAILED, _shown(error, job.folder), 413 if _too_large(error) else 400)
            except Exception as error:  # noqa: BLE001 (a bug: the server stays up, the client gets a line)
                log.exception("job %s failed", job.id)
                job._end(FAILED, f"internal error ({type(error).__name__}); the server log has the details",
                         500)
            finally:
                with self.lock:
                    self.running = None

    def _run(self, job: Job) -> None:
        from dataclasses import replace

        from fractal_studio.cli import common
        from fractal_studio.editing.imageio import save_pngs

        loaded = self.load(job.model)
        options = replace(job.options, class_id=common.match_class(loaded.model.config, job.class_text))
        doc, mask, job.doc, job.mask = job.doc, job.mask, None, None  # not kept with the job's result
        edited = None
        started = time.monotonic()
        for event in edit_image(loaded, doc, job.task, options, mask, cancel=job.cancel):
            if isinstance(event, Edited):
                edited = event
            else:
                self._progress(job, event)
        results = [job.folder / f"result-{k}.png" for k in range(1, len(edited.pictures) + 1)]
        save_pngs([(path, pixels, meta)
                   for path, (pixels, meta) in zip(results, edited.pictures, strict=True)])
        job.results, job.bits = results, edited.result.bits
        self.mean_seconds = 0.8 * self.mean_seconds + 0.2 * (time.monotonic() - started)
        job._end(DONE)

    def _progress(self, job: Job, event) -> None:
        job.progress = {"fraction": round(float(event.fraction), 4), "window": event.window,
                        "windows": event.windows, "level": event.level, "step": event.step,
                        "steps": event.steps, "elapsed": round(float(event.elapsed), 3),
                        "eta": None if event.eta is None else round(float(event.eta), 2)}
        now = time.monotonic()
        if job.preview is None or now - job.preview_at >= PREVIEW_SECONDS:
            job.preview_at = now
            rect = event.rect
            job.preview = ((rect.left, rect.top, rect.width, rect.height), png_bytes(event.preview))
        job.serial += 1

    def load(self, path: Path):
        """The model at `path` (loaded once; the last two are kept)."""
        from fractal_studio.cli import common
        from fractal_studio.editing.session import LoadedModel

        loaded = self.models.get(path)
        if loaded is None:
            model, model_hash = common.load_model_file(path, self.settings.device, self.settings.threads)
            loaded = LoadedModel(path=str(path), model=model, sha256=model_hash,
                                 device=next(model.parameters()).device)
            self.models[path] = loaded
            while len(self.models) > 2:
                self.models.popitem(last=False)
        self.models.move_to_end(path)
        return loaded


def png_bytes(pixels) -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.fromarray(pixels).save(out, format="PNG", compress_level=1)
    return out.getvalue()


def _too_large(error: UserError) -> bool:
    from fractal_studio.errors import TooLarge

    return isinstance(error, TooLarge)


def _shown(error: BaseException, folder: Path) -> str:
    """The error's line, with the job's private folder left out of the upload's names."""
    return printable(str(error).replace(f"{folder}/", ""))
