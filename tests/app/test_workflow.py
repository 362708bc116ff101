"""End-to-end editing in the window with the toy model: paint, generate, apply, undo, export."""

from __future__ import annotations

import numpy as np

from fractal_studio.editing.imageio import load_image, read_png_metadata

from .helpers import drag, open_at_100_percent, paint, run_to_end


def test_paint_generate_apply_undo_export(window, qtbot, photo, tmp_path, dialogs):
    path, original = photo
    assert open_at_100_percent(window, path)
    paint(qtbot, window, [(10, 10), (16, 12), (24, 14)], size=8)
    mask = window.session.doc.mask.copy()
    assert mask.any() and not mask.all()
    assert len(window.session.history.done) == 1  # the stroke is undoable

    order = []
    show, end = window._show_progress, window._run_ended
    window._show_progress = lambda run, e: (order.append("event"), show(run, e))
    window._run_ended = lambda *a: (order.append("done"), end(*a))
    run_to_end(qtbot, window)
    assert "event" in order and order.index("event") < order.index("done"), order
    assert len(window.session.candidates) == 2
    assert window.candidate_strip.list.count() == 2
    # Best first by the model's likelihood of the fill, its bits under each thumbnail.
    labels = [window.candidate_strip.list.item(k).text() for k in range(2)]
    bits = window.session.run.result.bits
    assert labels == [f"#{k + 1} · {bits[k]:.2f} bits" for k in range(2)] and bits[0] <= bits[1]

    window.candidate_strip.changed.setChecked(True)
    assert window.canvas.changed_item.isVisible()
    window.apply_candidate(1)
    applied = window.session.doc.image.copy()
    assert np.array_equal(applied[~mask], original[~mask])  # bit-exact outside the mask
    assert not np.array_equal(applied[mask], original[mask])

    window.undo()
    assert np.array_equal(window.session.doc.image, original)
    window.redo()
    assert np.array_equal(window.session.doc.image, applied)

    out = tmp_path / "out.png"
    assert window.export_png(str(out))
    saved = load_image(out).pixels
    assert np.array_equal(saved, applied)
    assert np.array_equal(saved[~mask], original[~mask])
    metadata = read_png_metadata(out)
    assert metadata["seed"] == "7" and metadata["software"].startswith("fractal-studio")
    assert metadata["mask_sha256"] and metadata["model_sha256"] == window.model_hash
    assert not [d for d in dialogs if d[0] == "warning"], dialogs


def test_drag_right_border_outpaints(window, qtbot, photo):
    path, original = photo
    open_at_100_percent(window, path, centre=(40, 16))
    canvas = window.canvas
    grow = 12
    drag(qtbot, canvas, [(40, 16), (46, 16), (40 + grow, 16)])
    doc = window.session.doc
    assert doc.size == (40 + grow, 32)
    assert np.array_equal(doc.image[:, :40], original)
    assert doc.mask[:, 40:].all() and not doc.mask[:, :40].any()
    assert window.session.empty[:, 40:].all()

    run_to_end(qtbot, window)
    window.apply_candidate(0)
    doc = window.session.doc
    assert np.array_equal(doc.image[:, :40], original)  # the original is kept bit-exact
    assert doc.image[:, 40:].any()  # the new area was generated
    assert window.session.empty is None  # nothing left to show as a checkerboard
    window.undo()
    window.undo()
    assert window.session.doc.size == (40, 32)
    assert window.canvas.canvas_size == (40, 32)


def test_soft_brush_edges_blend_by_coverage(window, qtbot, photo):
    path, original = photo
    open_at_100_percent(window, path)
    canvas = window.canvas
    paint(qtbot, window, [(12, 16), (20, 16), (28, 16)], size=12, hardness=0.1)
    coverage = canvas.layer.coverage.copy()
    mask = window.session.doc.mask.copy()
    assert np.array_equal(mask, coverage > 0)
    partial = mask & (coverage < 200)
    assert partial.sum() > 10  # a soft brush leaves a soft edge
    run_to_end(qtbot, window)
    candidate = window.session.candidates[0].astype(int)
    difference = np.abs(candidate - original.astype(int)).max(axis=-1)
    # a pixel may move at most by its coverage share of the full range (plus rounding)
    assert (difference[mask] <= np.ceil(coverage[mask] / 255 * 255) + 1).all()
    assert np.array_equal(candidate[~mask], original[~mask])


def test_border_drag_works_in_every_tool_and_shows_in_the_extend_boxes(window, qtbot, photo):
    from PySide6.QtCore import Qt

    from .helpers import view_point

    path, _ = photo
    open_at_100_percent(window, path, centre=(40, 16))
    window.set_tool("pan")
    canvas, viewport = window.canvas, window.canvas.viewport()
    qtbot.mousePress(viewport, Qt.MouseButton.LeftButton, pos=view_point(canvas, 40, 16))
    qtbot.mouseMove(viewport, view_point(canvas, 45, 16))
    qtbot.mouseMove(viewport, view_point(canvas, 50, 16))
    assert window.task_panel.sides["right"].value() == 10  # the drag shows while it lasts
    qtbot.mouseRelease(viewport, Qt.MouseButton.LeftButton, pos=view_point(canvas, 50, 16))
    assert window.session.doc.size == (50, 32)
    assert window.task_panel.sides["right"].value() == 0


def test_vary_detail_keeps_the_candidates_layout_and_redraws_their_detail(window, qtbot, photo):
    path, original = photo
    open_at_100_percent(window, path)
    paint(qtbot, window, [(10, 10), (16, 12), (24, 14)], size=8)
    mask = window.session.doc.mask.copy()
    run_to_end(qtbot, window)
    before = [window.session.candidates[k].copy() for k in range(2)]
    assert window.candidate_strip.vary.isEnabled()
    finished = window.runs_finished
    window.candidate_strip.vary.click()
    qtbot.waitUntil(lambda: window.runs_finished > finished, timeout=60000)
    after = window.session.candidates
    assert len(after) == 2 and window.session.run.vary is not None
    for a, b in zip(before, after, strict=True):
        assert np.array_equal(a[~mask], b[~mask])  # bit-exact outside the mask
        assert not np.array_equal(a[mask], b[mask])  # new detail
    assert window.candidate_strip.list.count() == 2
