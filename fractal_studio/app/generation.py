"""Generating, streaming previews onto the canvas, and choosing among candidates (MainWindow mixin)."""

from __future__ import annotations

import time

import numpy as np
from PySide6.QtWidgets import QMessageBox

from fractal_studio.app.mask_tools import Box
from fractal_studio.app.worker import Job
from fractal_studio.devices import pick_device
from fractal_studio.errors import UserError


def mask_box(mask: np.ndarray, feather: int = 0) -> Box | None:
    """Bounding box of the mask (where candidates can differ from the document), grown by `feather`."""
    rows = np.flatnonzero(mask.any(axis=1))
    if rows.size == 0:
        return None
    cols = np.flatnonzero(mask.any(axis=0))
    h, w = mask.shape
    pad = int(feather) + 1
    return Box(max(int(cols[0]) - pad, 0), max(int(rows[0]) - pad, 0),
               min(int(cols[-1]) + 1 + pad, w), min(int(rows[-1]) + 1 + pad, h))


def _eta(seconds: float | None) -> str:
    if seconds is None or not np.isfinite(seconds):
        return ""
    seconds = int(round(seconds))
    return f"ETA {seconds // 60}:{seconds % 60:02d}" if seconds >= 60 else f"ETA {seconds}s"


class GenerationMixin:
    def edit_options(self):
        from fractal_studio.editing.engine import EditOptions

        p = self.params_panel.params()
        return EditOptions(class_id=self.class_picker.current(), cfg=p.cfg, cfg_schedule=p.cfg_schedule,
                           temperature=p.temperature, spread=p.spread, iterations=p.iterations_tuple(),
                           seed=self.params_panel.seed_for_run(), candidates=p.candidates,
                           margin=p.margin or None, feather=p.feather, seamless=p.seamless)

    def generate(self) -> Job | None:
        if self.job is not None and self.job.running:
            return None
        if self.model is None:
            self.show_error("No model", "Load a model first (Model menu).")
            return None
        doc = self.editor.doc
        if doc is None:
            self.new_canvas()
            doc = self.editor.doc
        if not doc.mask.any():
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
        self.discard_candidates()
        self.result_box = mask_box(doc.mask, getattr(options, "feather", 0))
        image, mask, model, model_hash = doc.image.copy(), doc.mask.copy(), self.model, self.model_hash
        blank = doc.blank.copy() if getattr(doc, "blank", None) is not None else None
        coverage = self.canvas.layer.coverage
        # A soft brush leaves partial coverage at stroke edges: generated pixels blend in by it.
        weights = None
        if coverage.shape == mask.shape and (coverage[mask] < 255).any():
            weights = np.where(mask & (coverage == 0), np.uint8(255), coverage)
        class_id = self.class_picker.current()
        if class_id is not None:
            recent = self.store.push_recent(f"recent/classes/{model.config.name}", str(class_id))
            self.class_picker.set_recent([int(v) for v in recent if str(v).isdigit()])

        def work(cancel):
            from fractal_studio.editing.engine import run_edit

            if next(model.parameters()).device != device:
                model.to(device)
            return run_edit(model, image, mask, options, cancel=cancel, model_hash=model_hash, blank=blank,
                            weights=weights)

        self.device_label.setText(f"Device: {device}")
        self.job = Job(work, self)
        self.job.event.connect(self._on_event)
        self.job.done.connect(self._on_done)
        self.job.failed.connect(self._on_failed)
        self.job.stopped.connect(self._on_stopped)
        self.progress.setRange(0, 1000)
        self.progress.setValue(0)
        self.progress.setVisible(True)
        self.progress_label.setText("starting…")
        self.canvas.painting_enabled = False
        self.job.start()
        self.update_actions()
        return self.job

    def cancel_generation(self) -> None:
        if self.job is not None and self.job.running:
            self.job.cancel()
            self.progress_label.setText("cancelling…")

    def _on_event(self, event) -> None:
        from fractal_studio.editing.engine import EditProgress

        if not isinstance(event, EditProgress) or self.job is None or self.job.cancel_event.is_set():
            return
        self.stream_events += 1
        rect = event.rect
        self.canvas.draw_patch(rect.left, rect.top, event.preview)
        drawn = Box(rect.left, rect.top, rect.left + rect.width, rect.top + rect.height)
        self.result_box = drawn.union(self.result_box)
        self.progress.setValue(int(event.fraction * 1000))
        window = f"window {event.window}/{event.windows} · " if event.windows > 1 else ""
        self.progress_label.setText(f"{window}level {event.level + 1} · step {event.step}/{event.steps} "
                                    f"· {int(event.fraction * 100)}% {_eta(event.eta)}")

    def _on_done(self, result) -> None:
        if result is None or result.cancelled:
            self.canvas.restore_pixels(self.result_box)
            self.status.showMessage("Generation cancelled; the image is unchanged.", 5000)
            return
        self.result = result
        self.candidate_strip.focus_box = self.result_box
        self.last_run_label.setText(f"Last run: {result.elapsed:.1f} s")
        self.candidate_strip.set_candidates(result.candidates)
        self.preview_candidate(0)
        self.status.showMessage(f"{len(result.candidates)} candidate(s) ready: click to preview, "
                                "double-click or Apply to keep one", 8000)

    def _on_failed(self, message: str) -> None:
        self.canvas.restore_pixels(self.result_box)
        self.show_error("Generation failed", message)

    def _on_stopped(self) -> None:
        self.runs_finished += 1
        self.progress.setVisible(False)
        self.progress_label.setText("")
        self.canvas.painting_enabled = True
        self.update_actions()

    # ------------------------------------------------------------------ candidates
    def preview_candidate(self, index: int) -> None:
        if self.result is None or not 0 <= index < len(self.result.candidates):
            self.preview_index = -1
            self.canvas.restore_pixels(self.result_box)
            self.canvas.set_mask_visible(True)
            return
        self.preview_index = index
        self.canvas.show_pixels(self.result.candidates[index], self.result_box)
        self.canvas.set_mask_visible(False)
        if self.candidate_strip.changed.isChecked():
            self.show_changed(True)

    def apply_candidate(self, index: int) -> None:
        if self.result is None or not 0 <= index < len(self.result.candidates):
            return
        result = self.result
        try:
            self.editor.apply_candidate(result, index)
        except UserError as error:
            self.show_error("Cannot apply", str(error))
            return
        self.discard_candidates()
        self.status.showMessage(f"Applied candidate #{index + 1} (Ctrl+Z to undo)", 5000)

    def discard_candidates(self) -> None:
        if self.result is not None:
            self.canvas.restore_pixels(self.result_box)
        self.result = None
        self.preview_index = -1
        self.candidate_strip.set_candidates([])
        self.canvas.show_changed(None)
        self.canvas.set_mask_visible(True)

    def compare(self, on: bool) -> None:
        """While on, shows the document as it is (the original) instead of the previewed candidate."""
        if on:
            self.canvas.restore_pixels(self.result_box)
            self.canvas.set_mask_visible(False)
        elif self.preview_index >= 0:
            self.preview_candidate(self.preview_index)
        else:
            self.canvas.set_mask_visible(True)

    def show_changed(self, on: bool) -> None:
        if not on or self.result is None or self.preview_index < 0:
            self.canvas.show_changed(None)
            return
        doc = self.editor.doc
        changed = (self.result.candidates[self.preview_index] != doc.image).any(axis=2)
        outside = int((changed & ~doc.mask).sum())
        self.canvas.show_changed(changed)
        self.status.showMessage(f"{int(changed.sum()):,} pixels changed, "
                                f"{outside:,} of them outside the mask",
                                10000)

    def close_running_job(self, timeout: float = 30.0) -> bool:
        """Cancels a running generation and waits for its thread (closing the window)."""
        job = self.job
        if job is None or not job.running:
            return True
        job.cancel()
        start = time.perf_counter()
        finished = job.wait(timeout)
        self.last_cancel_wait = time.perf_counter() - start
        return finished

    def show_info(self, title: str, message: str) -> None:
        QMessageBox.information(self, title, message)
