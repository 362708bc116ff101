"""Panels, settings, mask tools, autosave: what does not need a generation run."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import QSettings

from fractal_studio.app.mask_tools import MaskLayer
from fractal_studio.app.panels import ClassPicker
from fractal_studio.app.settings import Params, Store
from fractal_studio.editing.history import pack, unpack
from fractal_studio.editing.session import grown as grow
from fractal_studio.errors import UserError

from .helpers import drag, open_at_100_percent, paint, run_to_end


def test_params_persist(tmp_path):
    store = Store(QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat))
    params = Params(cfg=2.5, temperature=0.9, iterations="8,4", seed=42, random_seed=False, candidates=3,
                    seamless=False, detail=False, detail_spread=0.4)
    store.save_params(params, "toy")
    again = Store(QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat)).load_params("toy")
    assert again == params
    assert again.iterations_tuple() == (8, 4)
    other = Store(QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat)).load_params("other")
    assert other == Params()


def test_colour_matching_checkbox_reaches_the_edit(window):
    assert window.edit_options().seamless  # on by default
    window.params_panel.seamless.setChecked(False)
    assert window.params_panel.params().seamless is False
    assert window.edit_options().seamless is False


def test_fine_detail_is_offered_for_models_that_fill_coarse_to_fine_and_reaches_the_edit(window):
    import dataclasses

    panel = window.params_panel
    assert not panel.detail.isEnabled() and not panel.detail_spread.isEnabled()  # the toy model: no
    kept = panel.params()  # what the settings keep of a model without coarse to fine
    assert kept.detail_spread is None
    sampling = dataclasses.replace(window.model.config.sampling, detail_spread=0.3, detail_iterations=(2, 2))
    panel.set_defaults(sampling)  # as loading a model does: its defaults, then its kept settings
    panel.set_params(kept)
    assert panel.detail.isEnabled() and panel.detail.isChecked() and panel.detail_spread.isEnabled()
    assert panel.detail_spread.value() == pytest.approx(0.3)
    assert panel.params().detail_spread is None  # the model's own value
    panel.detail_spread.setValue(0.5)
    assert window.edit_options().detail_spread == pytest.approx(0.5) and window.edit_options().detail
    panel.detail.setChecked(False)
    assert window.edit_options().detail is False and not panel.detail_spread.isEnabled()


def test_class_picker_search(qtbot):
    picker = ClassPicker()
    qtbot.addWidget(picker)
    picker.set_classes(["tench", "goldfish", "Great white shark"], conditional=True, recent=[2])
    texts = [picker.list.item(i).text() for i in range(picker.list.count())]
    assert texts == ["unconditional", "★ 2: Great white shark", "0: tench", "1: goldfish"]  # once each
    with qtbot.waitSignal(picker.classChanged) as signal:
        picker.search.setText("GOLD")  # typing chooses the first match, no Enter needed
    assert signal.args == [1] and picker.current() == 1
    items = [picker.list.item(i) for i in range(picker.list.count())]
    assert [item.text() for item in items if not item.isHidden()] == ["1: goldfish"]
    picker.search.setText("2")  # the recent class is found where it is listed
    assert [i for i in range(picker.list.count()) if not picker.list.item(i).isHidden()] == [1]
    assert picker.current() == 2
    picker.search.setText("")
    picker.select(0)
    picker.set_recent([0, 2])
    assert picker.current() == 0 and picker.list.item(1).text() == "★ 0: tench"
    assert picker.list.count() == 4
    picker.set_classes(["class 0"], conditional=False)
    assert not picker.list.isEnabled() and "unconditional" in picker.note.text()
    assert picker.current() is None


def test_brush_paints_incrementally():
    layer = MaskLayer()
    layer.load(np.zeros((3000, 4000), bool))
    box = layer.paint_segment((100, 100), (140, 100), 20, 1.0, erase=False)
    assert (box.right - box.left, box.bottom - box.top) == (61, 21)  # only the touched box
    mask = layer.as_mask()
    assert mask[100, 120] and not mask[100, 200] and not mask[125, 120]
    assert layer.argb[100, 120, 3] > 0 and layer.argb[500, 500, 3] == 0
    layer.paint_segment((120, 100), (120, 100), 6, 1.0, erase=True)
    assert not layer.as_mask()[100, 120]
    m = np.zeros((9, 9), bool)
    m[4, 4] = True
    assert grow(m, 2).sum() > 1 and not grow(grow(m, 2), -2)[0, 0]
    assert np.array_equal(unpack(pack(m)), m)


def test_stroke_undo_redo_and_mask_ops(window, qtbot, photo):
    path, _ = photo
    open_at_100_percent(window, path)
    paint(qtbot, window, [(5, 6), (30, 6)], size=6)
    painted = window.session.doc.mask.copy()
    assert painted[6, 15]
    window.undo()
    assert not window.session.doc.mask.any() and not window.canvas.layer.as_mask().any()
    window.redo()
    assert np.array_equal(window.canvas.layer.as_mask(), painted)
    window.invert_mask()
    assert np.array_equal(window.session.doc.mask, ~painted)
    window.clear_mask()
    assert not window.session.doc.mask.any()
    window.undo()
    window.undo()
    window.grow_mask(2)
    assert window.session.doc.mask.sum() > painted.sum()
    window.set_tool("rect")
    drag(qtbot, window.canvas, [(3, 20), (10, 28)])
    assert window.session.doc.mask[25, 5]


def test_status_bar_names_the_zoom(window, photo):
    open_at_100_percent(window, photo[0])
    window.canvas.set_zoom(0.5)
    assert window.zoom_label.text() == "Zoom: 50%"


def test_no_model_explains_how_to_get_one(make_window):
    window = make_window()
    window.start()
    assert window.model is None
    text = window.model_panel.info.text()
    assert "No model" in text and ".safetensors" in text and "convert" in text.lower()
    assert not window.generate_action.isEnabled()


def test_autosave_and_crash_restore(window, make_window, qtbot, photo, tmp_path, dialogs):
    path, original = photo
    window.open_image(str(path))
    window.session.extend(0, 0, 8, 0)
    window.params_panel.seed.setValue(1234)
    window.autosave.mark_running()
    window.autosave_tick(wait=True)
    assert (tmp_path / "data" / "session.npz").is_file()
    # a crash: the running marker stays, the process and its lock go; the next window offers to restore
    window.instance_lock.unlock()
    second = make_window()
    assert second.autosave.crashed
    assert second.restore_session()
    assert second.session.doc.size == (48, 32)
    assert np.array_equal(second.session.doc.image[:, :40], original)
    assert second.session.empty[:, 40:].all()
    assert second.params_panel.seed.value() == 1234
    second.autosave.mark_running()
    second.close()  # a clean exit: saved, and no restore offer next time
    assert not (tmp_path / "data" / "running.marker").exists()
    third = make_window()
    assert not third.autosave.crashed
    third.autosave.mark_running()  # crash again: start() asks (the patched dialog answers No)
    third.instance_lock.unlock()
    fourth = make_window()
    fourth.start()
    assert dialogs[-1][0] == "question" and not fourth.autosave.exists()


def test_stroke_history_stores_only_the_stroke_box(window, qtbot):
    from fractal_studio.editing.document import Document

    window.set_document(Document(np.zeros((3000, 4000, 3), np.uint8)))
    window.canvas.set_brush(size=50, hardness=1.0)
    layer = window.canvas.layer
    box = layer.paint_segment((100, 100), (600, 120), 50, 1.0, erase=False)
    window._stroked(box)
    (step,) = window.session.history.done

    def size(packed):
        kind, data, _ = packed
        return data.nbytes if kind == "raw" else len(data)

    assert step.rect.width * step.rect.height < 600 * 80
    assert size(step.before) < 6_000  # nothing was there: bit-packed
    assert size(step.after) < 600 * 80  # anti-aliased edges: the box's bytes, not the 12 MB mask
    assert window.session.doc.mask[110, 300]
    window.undo()
    assert not window.session.doc.mask.any()


def _write_session(folder, npz: bytes | None = None, info: str | None = None, arrays=None):
    folder.mkdir(parents=True, exist_ok=True)
    if arrays is not None:
        np.savez_compressed(folder / "session.npz", **arrays)
    elif npz is not None:
        (folder / "session.npz").write_bytes(npz)
    (folder / "session.json").write_text(info if info is not None else "{}")
    (folder / "running.marker").write_text("12345")


GOOD_ARRAYS = {"image": np.zeros((8, 8, 3), np.uint8), "mask": np.zeros((8, 8), bool)}
DAMAGED_AUTOSAVES = {
    "empty npz": dict(npz=b""),
    "truncated npz": dict(npz=b"PK\x03\x04" + b"\0" * 20),
    "json of the wrong shape": dict(arrays=GOOD_ARRAYS, info="[1, 2, 3]"),
    "json not json": dict(arrays=GOOD_ARRAYS, info="{oops"),
    "params a list": dict(arrays=GOOD_ARRAYS, info='{"params": [1, 2]}'),
    "origin of three": dict(arrays=GOOD_ARRAYS, info='{"origin": [1, 2, 3]}'),
    "image not rgb": dict(arrays={"image": np.zeros((8, 8), np.uint8), "mask": np.zeros((8, 8), bool)}),
    "mask of another size": dict(arrays={"image": np.zeros((8, 8, 3), np.uint8),
                                         "mask": np.zeros((4, 8), bool)}),
    "no mask": dict(arrays={"image": np.zeros((8, 8, 3), np.uint8)}),
    "object array": dict(npz=None, arrays=None),
}


@pytest.mark.parametrize("case", list(DAMAGED_AUTOSAVES))
def test_a_damaged_autosave_is_set_aside_and_the_app_starts(case, make_window, tmp_path, dialogs,
                                                            monkeypatch):
    from PySide6.QtWidgets import QMessageBox

    folder = tmp_path / "data"
    spec = dict(DAMAGED_AUTOSAVES[case])
    if case == "object array":  # a pickle inside the npz must never be loaded
        import io
        buffer = io.BytesIO()
        np.savez(buffer, image=np.array([object()], dtype=object), mask=np.zeros(1, bool))
        spec = dict(npz=buffer.getvalue())
    _write_session(folder, **spec)
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: QMessageBox.StandardButton.Yes)
    window = make_window()
    assert window.autosave.crashed
    window.start()  # offers the restore (answered Yes), which fails cleanly
    errors = [d for d in dialogs if d[0] in ("warning", "critical")]
    assert len(errors) == 1 and "cannot be restored" in errors[0][2] and "moved to" in errors[0][2]
    assert "\n" not in errors[0][2]
    assert window.isVisible()
    assert not (folder / "session.npz").exists()
    assert list(folder.glob("damaged-*/session.json"))  # kept aside, not deleted
    window.close()
    again = make_window()
    assert not again.autosave.crashed  # no second offer of the same damaged session


def test_a_second_running_copy_neither_restores_nor_autosaves(make_window, tmp_path):
    first = make_window()
    first.autosave.mark_running()
    second = make_window()  # the same data folder while the first runs
    assert first.autosave is not None and second.autosave is None
    assert "does not autosave" in second.status.currentMessage()
    first.close()
    third = make_window()  # the first has quit: its folder is free again
    assert third.autosave is not None


def test_changes_are_autosaved_shortly_after_they_happen(window, qtbot, photo, tmp_path):
    from fractal_studio.app import main_window

    assert main_window.AUTOSAVE_DELAY_MS <= 2000
    window.autosave_timer.setInterval(50)
    path, _ = photo
    window.open_image(str(path))
    window.session.extend(0, 0, 4, 0)
    qtbot.waitUntil(lambda: (tmp_path / "data" / "session.npz").is_file(), timeout=5000)
    assert window.saved_revision == window.session.revision


def test_quitting_or_opening_with_unexported_changes_asks_first(window, qtbot, photo, tmp_path, monkeypatch):
    from PySide6.QtWidgets import QFileDialog, QMessageBox

    buttons = QMessageBox.StandardButton
    asked = []
    answer = [buttons.Cancel]
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: (asked.append(a[1]), answer[0])[1])
    path, original = photo
    open_at_100_percent(window, path)
    paint(qtbot, window, [(10, 10), (20, 12)], size=8)
    assert window.close() and not asked  # a mask alone: nothing to lose, no question
    window.show()
    run_to_end(qtbot, window)
    window.apply_candidate(0)
    assert not window.close() and asked == ["Unsaved changes"] and window.isVisible()  # Cancel keeps it
    assert not window.open_image(str(path)) and window.session.doc.path == str(path)
    assert not np.array_equal(window.session.doc.image, original)  # the applied edit is still there
    out = tmp_path / "kept.png"
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a, **k: (str(out), ""))
    answer[0] = buttons.Save
    assert window.open_image(str(path))  # exported first, then the other image opened
    assert out.is_file() and np.array_equal(window.session.doc.image, original)
    window.session.extend(0, 0, 4, 0)
    answer[0] = buttons.Discard
    assert window.close()


def test_undo_names_what_each_mask_change_was(window, qtbot, photo):
    open_at_100_percent(window, photo[0])
    paint(qtbot, window, [(10, 10), (20, 12)], size=6)
    window.set_tool("rect")
    drag(qtbot, window.canvas, [(24, 18), (32, 26)])
    window.set_tool("eraser")
    drag(qtbot, window.canvas, [(10, 10), (14, 10)])
    assert [step.text for step in window.session.history.done] == ["Brush stroke", "Mask rectangle",
                                                                    "Eraser stroke"]
    assert window.undo_action.text() == "&Undo Eraser stroke"


def test_wheel_zoom_keeps_the_point_under_the_cursor(window, qtbot, photo):
    from PySide6.QtCore import QPoint, QPointF, Qt
    from PySide6.QtGui import QWheelEvent
    from PySide6.QtWidgets import QApplication

    window.open_image(str(photo[0]))
    canvas = window.canvas
    canvas.fit()
    cursor = QPoint(canvas.viewport().width() // 4, canvas.viewport().height() // 3)
    under = canvas.mapToScene(cursor)
    for _ in range(3):
        wheel = QWheelEvent(QPointF(cursor), QPointF(canvas.viewport().mapToGlobal(cursor)), QPoint(0, 0),
                            QPoint(0, 120), Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier,
                            Qt.ScrollPhase.NoScrollPhase, False)
        zoom = canvas.zoom
        QApplication.sendEvent(canvas.viewport(), wheel)
        assert canvas.zoom > zoom
        now = canvas.mapToScene(cursor)
        assert abs(now.x() - under.x()) < 1.0 and abs(now.y() - under.y()) < 1.0
    middle = canvas.viewport().rect().center()
    centre = canvas.mapToScene(middle)
    canvas.zoom_by(1.25)  # keys (Ctrl++, 1) zoom about the view's centre
    after = canvas.mapToScene(middle)
    assert abs(after.x() - centre.x()) < 1.0 and abs(after.y() - centre.y()) < 1.0


def test_shortcuts_work_while_a_number_field_has_the_focus(window, qtbot, photo):
    from PySide6.QtCore import Qt

    open_at_100_percent(window, photo[0])
    paint(qtbot, window, [(10, 10), (20, 12)], size=6)
    field = window.params_panel.seed
    field.setFocus()
    qtbot.waitUntil(field.hasFocus, timeout=2000)
    qtbot.keyClick(field, Qt.Key.Key_E)  # the eraser tool, not a letter typed into the field
    assert window.canvas.tool == "eraser"
    qtbot.keyClick(field, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert not window.session.doc.mask.any()  # the stroke was undone
    qtbot.keyClick(field, Qt.Key.Key_5)  # digits still go into the field
    assert "5" in field.text()
    qtbot.keyClick(field, Qt.Key.Key_Return)
    qtbot.waitUntil(window.canvas.hasFocus, timeout=2000)  # Enter hands the focus back


def test_compare_after_apply_shows_the_image_before_it(window, qtbot, photo):
    from fractal_studio.app.layers import bgra_from_rgb

    path, original = photo
    open_at_100_percent(window, path)
    paint(qtbot, window, [(10, 10), (24, 14)], size=8)
    run_to_end(qtbot, window)
    window.apply_candidate(0)
    assert not window.candidate_strip.apply.isEnabled()  # the candidates went with the apply
    applied = window.session.doc.image.copy()
    assert not np.array_equal(applied, original)
    window.compare(True)  # \\ held
    assert np.array_equal(window.canvas.image_item.buffer, bgra_from_rgb(original))
    window.compare(False)
    assert np.array_equal(window.canvas.image_item.buffer, bgra_from_rgb(applied))


def test_help_lists_every_shortcut(window, dialogs):
    from PySide6.QtGui import QKeySequence

    window.show_shortcuts()
    kind, title, text = dialogs[-1]
    assert title == "Keyboard shortcuts"
    for action in window.actions():
        for key in action.shortcuts():
            assert key.toString(QKeySequence.SequenceFormat.NativeText) in text, action.text()
    assert "Shift+Wheel" in text and "Brush size" in text


def test_main_controls_have_names_for_screen_readers(window):
    from PySide6.QtWidgets import QAbstractSpinBox, QComboBox, QLineEdit, QSlider

    named = [window.canvas, window.candidate_strip.list, window.progress]
    fields = [w for kind in (QAbstractSpinBox, QComboBox, QSlider)
              for w in window.findChildren(kind) if w.isVisibleTo(window)]
    fields += [w for w in window.findChildren(QLineEdit) if w.isVisibleTo(window)
               and not isinstance(w.parent(), QAbstractSpinBox | QComboBox)]
    missing = [w for w in named + fields if not w.accessibleName()]
    assert not missing, [type(w).__name__ + ":" + w.toolTip()[:30] for w in missing]
    assert window.params_panel.seed.accessibleName() == "Seed"


def test_brush_settings_are_kept_for_the_next_start(make_window):
    first = make_window()
    first.canvas.set_brush(size=73, hardness=0.35)
    first.close()
    second = make_window()
    assert second.canvas.brush_size == 73 and abs(second.canvas.hardness - 0.35) < 1e-6
    assert second.size_box.value() == 73 and second.hardness_slider.value() == 35


def test_the_common_controls_fit_on_a_small_screen_with_a_class_model(make_window, qtbot):
    """At 1366x768 with the class list showing, the controls of every run are in view unscrolled."""
    from pathlib import Path

    window = make_window()
    window.resize(1366, 740)
    model = Path(__file__).resolve().parents[2] / "models" / "fashion_mnist.safetensors"
    window.load_model_path(str(model))
    qtbot.waitUntil(lambda: window.model is not None, timeout=20000)
    qtbot.wait(50)
    viewport = window.side_scroll.viewport()
    assert window.class_picker.list.isVisible()
    for field in (window.params_panel.cfg, window.params_panel.temperature, window.params_panel.spread,
                  window.params_panel.seed, window.params_panel.candidates):
        bottom = field.mapTo(viewport, field.rect().bottomLeft()).y()
        assert 0 <= bottom <= viewport.height(), (field.accessibleName(), bottom, viewport.height())


def test_a_restored_session_can_still_undo_its_last_steps(window, make_window, qtbot, photo, tmp_path):
    path, original = photo
    open_at_100_percent(window, path)
    paint(qtbot, window, [(10, 10), (24, 14)], size=8)
    run_to_end(qtbot, window)
    window.apply_candidate(0)
    window.session.extend(0, 0, 6, 0)
    applied = window.session.doc.image.copy()
    window.autosave.mark_running()
    window.autosave_tick(wait=True)
    window.instance_lock.unlock()  # a crash: the process and its lock are gone
    second = make_window()
    assert second.restore_session()
    assert np.array_equal(second.session.doc.image, applied)
    assert "3 steps to undo" in second.status.currentMessage()
    assert second.session.history.undo_text == "Extend canvas"
    second.undo()
    second.undo()  # the applied candidate
    assert np.array_equal(second.session.doc.image, original) and second.session.doc.mask.any()
    second.undo()  # the brush stroke
    assert not second.session.doc.mask.any() and not second.session.history.done


def test_a_history_that_does_not_fit_the_image_is_dropped_not_trusted(window, make_window, photo, tmp_path):
    import json

    window.open_image(str(photo[0]))
    window.session.extend(0, 0, 6, 0)
    window.autosave.mark_running()
    window.autosave_tick(wait=True)
    window.instance_lock.unlock()
    info_path = tmp_path / "data" / "session.json"
    info = json.loads(info_path.read_text())
    info["history"][0]["size"] = [10, 10]  # undo would crop to a size the image never had
    info_path.write_text(json.dumps(info))
    second = make_window()
    assert second.restore_session()
    assert second.session.doc.size == (46, 32) and not second.session.history.done
    assert "undo history could not be restored" in second.status.currentMessage()


def test_scroll_bars_show_only_when_the_image_is_larger_than_the_view(window, qtbot, photo):
    window.open_image(str(photo[0]))
    canvas = window.canvas
    canvas.fit()
    qtbot.wait(20)
    assert not canvas.horizontalScrollBar().isVisible() and not canvas.verticalScrollBar().isVisible()
    canvas.zoom_by(4.0)
    qtbot.wait(20)
    assert canvas.horizontalScrollBar().isVisible() and canvas.verticalScrollBar().isVisible()
    canvas.fit()
    qtbot.wait(20)
    assert not canvas.horizontalScrollBar().isVisible()


def test_the_panel_and_the_command_line_take_one_set_of_limits_from_the_options(window):
    import argparse

    from fractal_studio.cli import common
    from fractal_studio.editing.options import MAX_CANDIDATES, MAX_FEATHER, MAX_SEED, OPTIONS

    panel = window.params_panel
    boxes = {"cfg": panel.cfg, "temperature": panel.temperature, "spread": panel.spread, "seed": panel.seed,
             "candidates": panel.candidates, "feather": panel.feather, "detail_spread": panel.detail_spread}
    for name, box in boxes.items():
        option = OPTIONS[name]
        assert (box.minimum(), box.maximum()) == pytest.approx((option.low, option.high)), name
    assert (panel.seed.maximum(), panel.candidates.maximum(), panel.feather.maximum()) == (
        MAX_SEED, MAX_CANDIDATES, MAX_FEATHER)
    assert [panel.schedule.itemText(i) for i in range(panel.schedule.count())] == ["constant", "linear"]
    precisions = [panel.precision.itemText(i) for i in range(panel.precision.count())]
    assert precisions == ["auto", "fp32", "bf16", "fp16"]

    parser = argparse.ArgumentParser()
    common.add_model_options(parser)
    common.add_sampling_options(parser)
    common.add_edit_options(parser)
    for name, option in OPTIONS.items():
        if option.app and option.cli:  # what the panel offers, the command line offers too
            assert common.option_flag(name) in parser.format_help(), name
    # The largest values the panel's boxes hold are what the command line accepts, and one more is not.
    top = ["--seed", str(MAX_SEED), "--candidates", str(MAX_CANDIDATES), "--feather", str(MAX_FEATHER)]
    options = common.options_from_args(parser.parse_args(top))
    assert (options.seed, options.candidates, options.feather) == (MAX_SEED, MAX_CANDIDATES, MAX_FEATHER)
    for flag, box in (("--seed", panel.seed), ("--candidates", panel.candidates),
                      ("--feather", panel.feather)):
        with pytest.raises(UserError, match=f"^{flag} must be between"):
            common.options_from_args(parser.parse_args([flag, str(box.maximum() + 1)]))
    # The panel's parameters become the same options, checked the same way.
    panel.candidates.setValue(MAX_CANDIDATES)
    panel.seed.setValue(MAX_SEED)
    assert window.params_panel.params().edit_options(None, MAX_SEED).candidates == MAX_CANDIDATES
    with pytest.raises(UserError, match="Seed must be between 0 and 2"):
        window.params_panel.params().edit_options(None, MAX_SEED + 1)
