"""Generating, streaming previews onto the canvas, and choosing among candidates (MainWindow mixin).

One job path: `generate()` checks what it can at once and starts the `_generate` coroutine on the
asyncio loop (qasync: the same loop as Qt's). The coroutine awaits the session's run events from a
worker thread (`worker.Stream`, a queue of its own) and draws them as they arrive; Cancel (Esc)
cancels that task, which sets the run's stop flag and waits for the worker to end. The session keeps
the candidates only of the run that is current, so no other run's events or result can land here.
"""

from __future__ import annotations

import asyncio
import time

import numpy as np
from PySide6.QtWidgets import QMessageBox

from fractal_studio.app.worker import Stream, call, failure_message, modal
from fractal_studio.devices import pick_device
from fractal_studio.editing.engine import EditProgress
from fractal_studio.errors import UserError

TIME_LEFT_TICK_MS = 250  # how often the shown time left is counted down between events


class TimeLeft:
    """The progress line's text, its time left counted down from the last estimate: the engine
    estimates only at its events, and a long step or the compositing of a candidate sends none
    for seconds, during which a frozen figure would run ahead of the truth."""

    def __init__(self, stage: str = "", eta: float | None = None, at: float = 0.0):
        self.stage = stage  # what the run is doing and how far it is, e.g. "level 2 · step 3/4 · 40%"
        self.end = None if eta is None or not np.isfinite(eta) else at + eta  # monotonic seconds

    def text(self, now: float) -> str:
        if self.end is None:
            return self.stage
        return f"{self.stage} {_eta(max(self.end - now, 0.0))}"


def _eta(seconds: float | None) -> str:
    if seconds is None or not np.isfinite(seconds):
        return ""
    seconds = int(round(seconds))
    return f"ETA {seconds // 60}:{seconds % 60:02d}" if seconds >= 60 else f"ETA {seconds}s"


def _is_progress(event) -> bool:
    return isinstance(event, EditProgress)


class GenerationMixin:
    def edit_options(self):
        return self.params_panel.params().edit_options(self.class_picker.current(),
                                                       self.params_panel.seed_for_run())

    def generate(self) -> asyncio.Task | None:
        """Starts a run (Ctrl+Enter); returns its task, or None when nothing can start (told why)."""
        if self.generation is not None and not self.generation.done():
            if not self.session.run or not self.session.run.cancel.is_set():
                return None  # a run is going; Esc first (a cancelled one is awaited below)
        if self.model is None:
            self.show_error("No model", "Load a model first (Model menu).")
            return None
        if self.session.document is None:
            self.new_canvas()
        if not self.session.doc.mask.any():
            self.show_info("Nothing to generate",
                           "Paint a mask over the pixels to generate (B), drag a canvas border outward to "
                           "outpaint, or use Uncrop.")
            return None
        try:
            options = self.edit_options()
            device = pick_device(self.params_panel.device.currentText())
        except UserError as error:
            self.show_error("Cannot generate", str(error))
            return None
        self.generation = asyncio.ensure_future(self._generate(options, device, self.generation))
        self.update_actions()
        return self.generation

    def vary_detail(self) -> asyncio.Task | None:
        """Redraws the candidates' fine detail with their layout kept (the strip's Vary detail)."""
        if self.generation is not None and not self.generation.done():
            return None
        if not self.session.candidates:
            return None
        seed = self.params_panel.seed_for_run()
        self.generation = asyncio.ensure_future(self._generate(None, None, None, vary_seed=seed))
        self.update_actions()
        return self.generation

    async def _generate(self, options, device, previous: asyncio.Task | None, vary_seed=None,
                        reroll: tuple[int, float] | None = None) -> None:
        if previous is not None:
            await previous  # a cancelled run still finishing: its worker ends first
        try:
            if reroll is not None:  # (candidate, quantile): see uncertainty_view.py
                run = self.session.reroll_unsure(reroll[0], quantile=reroll[1])
            elif vary_seed is None:
                self.session.set_model(await call(self.session.loaded.on, str(device)))
                run = self.session.start_run(options)
            else:
                run = self.session.vary_detail(vary_seed)
        except UserError as error:
            self.show_error("Cannot generate", str(error))
            self.update_actions()
            return
        self._run_started(run)
        failure = None
        try:
            async with Stream(run.events(), run.cancel, replaceable=_is_progress) as events:
                self.stream = events
                async for event in events:
                    if _is_progress(event) and not run.cancel.is_set():
                        self._show_progress(run, event)
        except asyncio.CancelledError:
            run.cancel.set()
        except Exception as error:  # shown to the user; the app keeps running
            failure = failure_message(error)
        self._run_ended(run, self.session.finish_run(run), failure)

    def _run_started(self, run) -> None:
        self.result_rect = run.rect
        if run.options.class_id is not None:
            name = self.model.config.name
            recent = self.store.push_recent(f"recent/classes/{name}", str(run.options.class_id))
            self.class_picker.set_recent([int(v) for v in recent if str(v).isdigit()])
        self.device_label.setText(f"Device: {run.loaded.device}")
        self.progress.setRange(0, 1000)
        self.progress.setValue(0)
        self.progress.setVisible(True)
        self.progress_label.setText("starting…")
        self.time_left = None
        self.time_left_timer.start()
        self.canvas.painting_enabled = False
        self.update_actions()

    def _show_progress(self, run, event: EditProgress) -> None:
        self.stream_events += 1
        rect = event.rect
        self.canvas.draw_patch(rect.left, rect.top, event.preview)
        self.result_rect = self.result_rect.union(rect)
        self.progress.setValue(int(event.fraction * 1000))
        if event.sampled >= 1.0:
            stage = "finishing the candidates"  # upscaling and colour matching, after the last step
        else:
            window = f"window {event.window}/{event.windows} · " if event.windows > 1 else ""
            stage = f"{window}level {event.level + 1} · step {event.step}/{event.steps}"
        self.time_left = TimeLeft(f"{stage} · {int(event.fraction * 100)}%", event.eta, time.monotonic())
        self.show_time_left()

    def show_time_left(self) -> None:
        """The progress line, its time left as of now (the time-left timer calls it between events)."""
        if self.time_left is not None:
            self.progress_label.setText(self.time_left.text(time.monotonic()))

    def _stop_time_left(self) -> None:
        self.time_left_timer.stop()
        self.time_left = None

    def _run_ended(self, run, has_candidates: bool, failure: str | None) -> None:
        self.runs_finished += 1
        self.stream = None
        self._stop_time_left()
        self.progress.setVisible(False)
        self.progress_label.setText("")
        self.canvas.painting_enabled = True
        self.update_actions()
        if failure is not None:
            self.canvas.restore_pixels(self.result_rect)
            self.show_error("Generation failed", failure)
        elif not has_candidates:
            self.canvas.restore_pixels(self.result_rect)
            if run.result is None or run.result.cancelled:
                self.status.showMessage("Generation cancelled; the image is unchanged.", 5000)
        else:
            self.last_run_label.setText(f"Last run: {run.result.elapsed:.1f} s")
            self.candidate_strip.set_candidates(self.session.candidates, self.session.run.result.bits)
            shown = len(self.session.candidates) - 1 if run.rerolled_from is not None else 0  # a re-roll's
            self.candidate_strip.list.setCurrentRow(shown)
            self.preview_candidate(shown)
            self.status.showMessage(f"{len(self.session.candidates)} candidate(s) ready: click to preview, "
                                    "double-click or Apply to keep one", 8000)

    def cancel_generation(self) -> None:
        if self.generation is not None and not self.generation.done() and self.session.running:
            self.session.cancel()  # the worker stops at its next step, whatever the loop does next
            self.generation.cancel()
            self._stop_time_left()
            self.progress_label.setText("cancelling…")

    # ------------------------------------------------------------------ candidates
    def preview_candidate(self, index: int) -> None:
        candidates = self.session.candidates
        if not 0 <= index < len(candidates):
            self.preview_index = -1
            self.canvas.restore_pixels(self.result_rect)
            self.canvas.set_mask_visible(True)
            return
        self.preview_index = index
        rect = self.result_rect
        self.canvas.draw_patch(rect.left, rect.top, candidates.view(index, rect))
        self.canvas.set_mask_visible(False)
        if self.candidate_strip.changed.isChecked():
            self.show_changed(True)
        self.refresh_uncertainty()

    def apply_candidate(self, index: int) -> None:
        try:
            self.session.apply(index)
        except UserError as error:
            self.show_error("Cannot apply", str(error))
            return
        self.status.showMessage(f"Applied candidate #{index + 1} (Ctrl+Z to undo)", 5000)
        self.canvas.setFocus()

    def discard_candidates(self) -> None:
        """Drops the candidates (not a running run: Cancel does that) and shows the document."""
        if self.session.running:
            return
        self.session.discard()
        self.canvas.setFocus()

    def _candidates_changed(self, rect) -> None:
        """The session's run came or went: the strip and the canvas follow."""
        if self.session.candidates:
            return  # shown by _run_ended, which also knows how the run ended
        if self.result_rect is not None:
            self.canvas.restore_pixels(self.result_rect)
        self.preview_index = -1
        self.candidate_strip.set_candidates([])
        if self.uncertainty_action.isChecked():
            self.canvas.heat_item.setVisible(False)
        self.canvas.show_changed(None)
        self.canvas.set_mask_visible(True)

    def compare(self, on: bool) -> None:
        """While on (\\ or C held), shows what the edit changed from: the document instead of the
        previewed candidate, or, with no candidates, the image before the last applied result."""
        before = self.session.before_last_apply() if self.preview_index < 0 else None
        if on and before is not None:
            rect, pixels = before
            self.canvas.draw_patch(rect.left, rect.top, pixels)
            self.comparing = rect
        elif on:
            self.canvas.restore_pixels(self.result_rect)
            self.canvas.set_mask_visible(False)
        elif self.comparing is not None:
            self.canvas.restore_pixels(self.comparing)
            self.comparing = None
        elif self.preview_index >= 0:
            self.preview_candidate(self.preview_index)
        else:
            self.canvas.set_mask_visible(True)

    def show_changed(self, on: bool) -> None:
        candidates = self.session.candidates
        if not on or not candidates or self.preview_index < 0:
            self.canvas.show_changed(None)
            return
        doc = self.session.doc
        rect = candidates.box
        changed = (candidates.crop(self.preview_index) != doc.image[rect.slices]).any(axis=2)
        outside = int((changed & ~doc.mask[rect.slices]).sum())
        self.canvas.show_changed(changed, rect)
        self.status.showMessage(f"{int(changed.sum()):,} pixels changed, "
                                f"{outside:,} of them outside the mask",
                                10000)

    def close_running_job(self, timeout: float = 30.0) -> bool:
        """Cancels a running generation and waits for its worker thread (closing the window)."""
        stream = self.stream
        if self.session.run is not None:
            self.session.run.cancel.set()
        if stream is None:
            return True
        start = time.perf_counter()
        finished = stream.finished.wait(timeout)
        self.last_cancel_wait = time.perf_counter() - start
        if self.generation is not None:
            self.generation.cancel()
        return finished

    def show_info(self, title: str, message: str) -> None:
        modal(lambda: QMessageBox.information(self, title, message))
