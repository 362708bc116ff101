"""View › Uncertainty and Generate › Re-roll unsure parts, for MainWindow.

Every run keeps each candidate's bits per pixel (editing/uncertainty.py: the entropy of what the
model drew the pixel from, summed over R, G and B). The view shows the previewed candidate's map
as a heat overlay over the mask's box (clear where nothing was drawn); a re-roll draws that
candidate's least sure patches again, the rest of it known, and adds the result as a new candidate
(undo takes it away). Which patches: those above the strip's quantile of the candidate's patches.
"""

from __future__ import annotations

import asyncio

import numpy as np

from fractal_studio.app.layers import heat_overlay
from fractal_studio.editing.uncertainty import MAX_BITS


def uncertainty_overlay(bits: np.ndarray) -> np.ndarray:
    """A premultiplied BGRA buffer of a candidate's map: the surprise view's colours up to 24 bits
    (a uniform draw), transparent where no pixel was drawn (NaN)."""
    drawn = ~np.isnan(bits)
    out = heat_overlay(np.where(drawn, bits, 0.0), MAX_BITS)
    out[~drawn] = 0
    return out


class UncertaintyMixin:
    def candidate_uncertainty(self, index: int) -> np.ndarray | None:
        """Candidate `index`'s bits over the candidates' box, or None (no candidates or no map)."""
        run = self.session.run
        if not self.session.candidates or run.result.uncertainty is None:
            return None
        if not 0 <= index < len(run.result.uncertainty):
            return None
        return run.result.uncertainty[index]

    def show_uncertainty(self, on: bool) -> None:
        """View › Uncertainty: the previewed candidate's map as a heat overlay, or off."""
        heat = self.canvas.heat_item
        if not on:
            heat.setVisible(False)
            return
        bits = self.candidate_uncertainty(max(self.preview_index, 0))
        if bits is None:
            heat.setVisible(False)
            self.status.showMessage("Uncertainty: generate candidates first; it shows the previewed one's",
                                    6000)
            return
        if self.surprise_action.isChecked():  # one heat overlay at a time
            self.surprise_action.setChecked(False)
        box = self.session.candidates.box
        heat.set_buffer(uncertainty_overlay(bits))
        heat.setPos(box.left, box.top)
        heat.setVisible(True)
        drawn = bits[~np.isnan(bits)]
        if drawn.size:
            self.status.showMessage(f"Uncertainty: mean {drawn.mean():.2f}, highest {drawn.max():.2f} "
                                    f"bits per pixel (of {MAX_BITS:g})", 8000)

    def refresh_uncertainty(self) -> None:
        """The overlay follows the previewed candidate while the view is on."""
        if self.uncertainty_action.isChecked():
            self.show_uncertainty(True)

    def show_rerolled_from(self) -> None:
        """After undoing a re-roll: the candidates it was made from, the one it re-rolled previewed."""
        run = self.session.run
        self.candidate_strip.set_candidates(self.session.candidates, run.result.bits)
        shown = run.rerolled if run.rerolled_from is not None else len(self.session.candidates) - 1
        self.candidate_strip.list.setCurrentRow(shown)
        self.preview_candidate(shown)
        self.update_actions()

    def reroll_unsure(self) -> asyncio.Task | None:
        """Draws the previewed candidate's unsure patches again (the strip's Re-roll unsure)."""
        if self.generation is not None and not self.generation.done():
            return None
        if not self.session.candidates:
            return None
        index = max(self.preview_index, 0)
        quantile = self.candidate_strip.unsure_quantile.value()
        self.generation = asyncio.ensure_future(self._generate(None, None, None, reroll=(index, quantile)))
        self.update_actions()
        return self.generation
