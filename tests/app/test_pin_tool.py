"""The Pin tool in the window: dots painted inside the mask, undo, autosave, kept exactly by a run."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import Qt

from fractal_studio.editing.pins import pinned
from fractal_studio.editing.windows import Rect

from .helpers import open_at_100_percent, run_to_end, view_point


def click(qtbot, window, x: float, y: float, modifier=Qt.KeyboardModifier.NoModifier) -> None:
    qtbot.mouseClick(window.canvas.viewport(), Qt.MouseButton.LeftButton, modifier,
                     view_point(window.canvas, x, y))


def masked_photo(qtbot, window, photo):
    path, original = photo
    assert open_at_100_percent(window, path)
    # A hard mask: an autosave keeps the mask, not a soft brush's coverage, so the saved undo
    # history of a soft stroke does not restore.
    window.session.rectangle(Rect(4, 10, 32, 12))
    window.set_tool("pin")
    return original


def test_the_pin_tool_paints_dots_inside_the_mask_and_undo_removes_them(window, qtbot, photo):
    original = masked_photo(qtbot, window, photo)
    window.set_pin_colour((250, 0, 200))
    click(qtbot, window, 20.5, 16.5)
    doc = window.session.doc
    where = pinned(doc.pins, doc.mask)
    assert where.sum() >= 9 and where[16, 20]
    assert (doc.pins[where][:, :3] == (250, 0, 200)).all()
    # drawn on the canvas over the mask's tint, in the pin's colour (B, G, R, A)
    assert tuple(window.canvas.pins_item.buffer[16, 20]) == (200, 0, 250, 255)
    assert not window.canvas.pins_item.buffer[~where].any()
    click(qtbot, window, 2.5, 2.5)  # outside the mask: nothing pinned
    assert np.array_equal(pinned(doc.pins, doc.mask), where)
    click(qtbot, window, 10.5, 5.5, Qt.KeyboardModifier.ControlModifier)  # takes the colour under it
    at = window.canvas.mapToScene(view_point(window.canvas, 10.5, 5.5))  # the pixel the click lands on
    assert window.pin_colour == tuple(int(c) for c in original[int(at.y()), int(at.x())])
    assert window.session.history.undo_text == "Pin"
    window.undo()
    assert not pinned(window.session.doc.pins, window.session.doc.mask).any()
    assert not window.canvas.pins_item.buffer.any()
    window.redo()
    assert np.array_equal(pinned(window.session.doc.pins, window.session.doc.mask), where)
    click(qtbot, window, 20.5, 16.5, Qt.KeyboardModifier.AltModifier)  # Alt takes them away
    assert not pinned(window.session.doc.pins, window.session.doc.mask)[16, 20]


def test_generation_keeps_the_pins_exactly(window, qtbot, photo):
    original = masked_photo(qtbot, window, photo)
    window.set_pin_colour((0, 255, 0))
    click(qtbot, window, 14.5, 16.5)
    window.set_pin_colour((255, 0, 0))
    click(qtbot, window, 26.5, 16.5)
    doc = window.session.doc
    mask, where, pins = doc.mask.copy(), pinned(doc.pins, doc.mask), doc.pins.copy()
    run_to_end(qtbot, window)
    for candidate in window.session.candidates:
        assert np.array_equal(candidate[where], pins[where][:, :3])
        assert np.array_equal(candidate[~mask], original[~mask])
        assert (candidate[mask & ~where] != original[mask & ~where]).any()
    window.apply_candidate(0)
    assert np.array_equal(window.session.doc.image[where], pins[where][:, :3])


def test_pins_are_autosaved_and_restored(window, make_window, qtbot, photo, tmp_path):
    masked_photo(qtbot, window, photo)
    window.set_pin_colour((1, 2, 3))
    click(qtbot, window, 20.5, 16.5)
    doc = window.session.doc
    where = pinned(doc.pins, doc.mask)
    window.autosave.mark_running()
    window.autosave_tick(wait=True)
    window.instance_lock.unlock()
    second = make_window()
    assert second.restore_session()
    restored = second.session.doc
    assert np.array_equal(pinned(restored.pins, restored.mask), where)
    assert tuple(second.canvas.pins_item.buffer[16, 20]) == (3, 2, 1, 255)
    assert second.session.history.undo_text == "Pin"  # the pin is still undoable
    second.undo()
    assert not pinned(second.session.doc.pins, second.session.doc.mask).any()


def test_a_session_saved_without_pins_still_restores(window, make_window, qtbot, photo, tmp_path):
    masked_photo(qtbot, window, photo)
    window.autosave.mark_running()
    window.autosave_tick(wait=True)
    window.instance_lock.unlock()
    with np.load(tmp_path / "data" / "session.npz") as saved:
        assert "pins" not in saved.files  # as every autosave before pins
    second = make_window()
    assert second.restore_session()
    assert second.session.doc.pins is None and second.session.doc.mask.any()
