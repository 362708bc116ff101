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
    assert messages[0] == "Surprise map: starting…" and messages[-1].startswith("Surprise map: mean ")
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


def test_on_a_toy_model_the_selection_is_the_pasted_patch(window, qtbot, trained_toy, tmp_path):
    from PIL import Image

    from fractal_studio.editing.surprise import window_bits
    from fractal_studio.model.weights import save_model

    from ..conftest import PATCH, pasted_toy_image

    save_model(trained_toy, tmp_path / "toy.safetensors")
    window.load_model_path(str(tmp_path / "toy.safetensors"))
    qtbot.waitUntil(lambda: window.model_path == str(tmp_path / "toy.safetensors"), timeout=20000)
    image = pasted_toy_image()
    Image.fromarray(image).save(tmp_path / "pasted.png")
    assert window.open_image(str(tmp_path / "pasted.png"))
    bits = window_bits(window.model, image[None])[0]  # what the app computes for a one-window image
    patch = np.zeros(bits.shape, bool)
    patch[PATCH] = True
    task = window.select_surprising((bits[patch].mean() + bits[~patch].max()) / 2)
    qtbot.waitUntil(task.done, timeout=30000)
    mask = window.session.doc.mask
    assert task.result() and mask[patch].mean() >= 0.5 and not mask[~patch].any()
    hottest = np.unravel_index(np.argmax(window.surprise_bits()), bits.shape)
    assert patch[hottest]
