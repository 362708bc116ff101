"""View › Surprise map and Mask › Select surprising regions… (the map itself: tests/editing)."""

from __future__ import annotations

import numpy as np

from .helpers import open_at_100_percent


def test_the_heat_overlay_is_computed_in_the_background_and_kept_for_the_image(window, qtbot, photo):
    path, _ = photo
    open_at_100_percent(window, path)
    messages = []
    show = window.status.showMessage
    window.status.showMessage = lambda text, *a: (messages.append(text), show(text, *a))
    window.surprise_action.setChecked(True)
    task = window.show_surprise_map(True)
    assert task is not None and window.canvas.isEnabled()  # the UI goes on meanwhile
    qtbot.waitUntil(task.done, timeout=30000)
    bits = window.surprise_bits()
    assert bits is not None and bits.shape == (32, 40) and np.isfinite(bits).all()
    assert window.canvas.heat_item.isVisible()
    assert any(text.startswith("Surprise map: 100%") for text in messages)
    assert window.show_surprise_map(True) is None  # kept: shown again at once
    window.surprise_action.setChecked(False)
    window.show_surprise_map(False)
    assert not window.canvas.heat_item.isVisible()


def test_select_surprising_regions_masks_the_pixels_above_the_threshold_undoably(window, qtbot, photo):
    path, _ = photo
    open_at_100_percent(window, path)
    task = window.select_surprising(threshold=0.0)
    qtbot.waitUntil(task.done, timeout=30000)
    bits = window.surprise_bits()
    threshold = float(np.percentile(bits, 90))
    task = window.select_surprising(threshold)
    qtbot.waitUntil(task.done, timeout=30000)
    assert task.result() is True
    assert np.array_equal(window.session.doc.mask, bits > threshold)
    assert window.undo_action.isEnabled()
    window.undo()
    assert np.array_equal(window.session.doc.mask, bits > 0.0)  # the previous selection
