"""View › Uncertainty and Re-roll unsure parts, offscreen."""

from __future__ import annotations

import numpy as np

from fractal_studio.app.uncertainty_view import uncertainty_overlay

from .helpers import open_at_100_percent, paint, run_to_end


def test_the_overlay_shows_the_previewed_candidates_map_and_reroll_adds_a_candidate(window, qtbot, photo):
    path, _ = photo
    open_at_100_percent(window, path)
    paint(qtbot, window, [(8, 8), (16, 12), (26, 14)], size=10)
    run_to_end(qtbot, window)
    heat = window.canvas.heat_item
    assert window.session.run.result.uncertainty is not None
    window.uncertainty_action.trigger()
    assert window.uncertainty_action.isChecked() and heat.isVisible()
    box = window.session.candidates.box
    assert (heat.pos().x(), heat.pos().y()) == (box.left, box.top)
    expected = uncertainty_overlay(window.session.run.result.uncertainty[0])
    assert np.array_equal(heat.buffer, expected)
    window.candidate_strip.list.setCurrentRow(1)  # the overlay follows the previewed candidate
    assert np.array_equal(heat.buffer, uncertainty_overlay(window.session.run.result.uncertainty[1]))

    before = window.session.candidates[1].copy()
    finished = window.runs_finished
    assert window.candidate_strip.reroll.isEnabled() and window.reroll_action.isEnabled()
    window.candidate_strip.reroll.click()
    qtbot.waitUntil(lambda: window.runs_finished > finished, timeout=60000)
    candidates = window.session.candidates
    assert len(candidates) == 3 and window.candidate_strip.list.count() == 3
    assert window.preview_index == 2  # the new candidate is shown
    chosen = (candidates[2] != before).any(-1)
    assert chosen.any() and not chosen[~window.session.doc.mask].any()
    assert np.array_equal(heat.buffer, uncertainty_overlay(window.session.run.result.uncertainty[2]))
    assert window.undo_action.isEnabled() and "re-roll" in window.undo_action.text()
    window.undo_action.trigger()
    assert len(window.session.candidates) == 2 and window.candidate_strip.list.count() == 2
    assert np.array_equal(window.session.candidates[1], before)
    window.uncertainty_action.trigger()
    assert not heat.isVisible()


def test_the_overlay_is_clear_where_nothing_was_drawn():
    bits = np.array([[np.nan, 0.0, 24.0]], np.float32)
    overlay = uncertainty_overlay(bits)
    assert (overlay[0, 0] == 0).all() and overlay[0, 1, 3] < overlay[0, 2, 3]
