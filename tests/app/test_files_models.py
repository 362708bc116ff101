"""Clipboard, new canvas, uncrop, compare key, model conversion in the background."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtGui import QGuiApplication

from fractal_studio.app.files import qimage_from_rgb, rgb_from_qimage
from fractal_studio.app.layers import bgra_from_rgb

from .helpers import run_to_end, wait_for_run

REFERENCE = Path(__file__).resolve().parents[1] / "fixtures" / "reference" / "toy_cols"


def test_paste_copy_and_new_canvas_generation(window, qtbot, photo):
    _, original = photo
    QGuiApplication.clipboard().setImage(qimage_from_rgb(original))
    window.paste()
    assert np.array_equal(window.editor.doc.image, original)
    window.new_canvas()
    assert window.editor.doc.size == (16, 16) and window.editor.doc.mask.all()
    run_to_end(qtbot, window)
    window.apply_candidate(0)
    assert window.editor.empty is None
    window.copy_result()
    assert np.array_equal(rgb_from_qimage(QGuiApplication.clipboard().image()), window.editor.doc.image)


def test_uncrop_one_click_and_compare_key(window, qtbot, photo):
    path, original = photo
    window.open_image(str(path))
    before = window.runs_finished
    window.uncrop(1.5)
    doc = window.editor.doc
    assert doc.size == (40, 32) and window.job is not None  # the image shrinks into the middle
    assert doc.mask[0].all() and doc.mask[:, 0].all() and not doc.mask[16, 20]
    wait_for_run(qtbot, window, before)
    assert window.result is not None
    candidate = window.result.candidates[0]
    assert np.array_equal(window.canvas.image_item.buffer, bgra_from_rgb(candidate))
    qtbot.keyPress(window.canvas, Qt.Key.Key_Backslash)
    shown = window.canvas.image_item.buffer.copy()
    qtbot.keyRelease(window.canvas, Qt.Key.Key_Backslash)
    assert not np.array_equal(shown, bgra_from_rgb(candidate))  # the original (empty border) while held
    assert np.array_equal(window.canvas.image_item.buffer, bgra_from_rgb(candidate))
    window.candidate_strip.changed.setChecked(True)
    changed = window.canvas.changed_item.buffer[..., 3] > 0
    assert not (changed & ~window.editor.doc.mask).any()  # nothing changed outside the mask


def test_convert_checkpoint_in_background(make_window, qtbot, tmp_path, dialogs):
    window = make_window()
    dst = tmp_path / "converted.safetensors"
    job = window.convert(str(REFERENCE / "checkpoint-last.pth"), str(dst), str(REFERENCE / "config.json"))
    qtbot.waitUntil(lambda: not job.running, timeout=60000)
    qtbot.waitUntil(lambda: window.model is not None, timeout=20000)
    assert dst.is_file() and window.model_path == str(dst) and not dialogs
    window.convert(str(tmp_path / "missing.pth"), str(tmp_path / "x.safetensors"))
    qtbot.waitUntil(lambda: len(dialogs) == 1, timeout=5000)
    assert "missing.pth" in dialogs[0][2]


def test_drop_an_image_file_opens_it(window, photo):
    from PySide6.QtCore import QMimeData, QPointF, QUrl
    from PySide6.QtGui import QDropEvent

    path, original = photo
    data = QMimeData()
    data.setUrls([QUrl.fromLocalFile(str(path))])
    event = QDropEvent(QPointF(10, 10), Qt.DropAction.CopyAction, data, Qt.MouseButton.NoButton,
                       Qt.KeyboardModifier.NoModifier)
    window.dropEvent(event)
    assert np.array_equal(window.editor.doc.image, original)
    assert window.store.recent("recent/files")[0] == str(path.resolve())
    assert window.recent_menu.actions()[0].text() == str(path.resolve())
