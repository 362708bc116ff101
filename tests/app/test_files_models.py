"""Clipboard, new canvas, uncrop, compare key, model conversion in the background."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
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
    assert np.array_equal(window.session.doc.image, original)
    window.new_canvas()
    assert window.session.doc.size == (16, 16) and window.session.doc.mask.all()
    run_to_end(qtbot, window)
    window.apply_candidate(0)
    assert window.session.empty is None
    window.copy_result()
    assert np.array_equal(rgb_from_qimage(QGuiApplication.clipboard().image()), window.session.doc.image)


def test_uncrop_one_click_and_compare_key(window, qtbot, photo):
    path, original = photo
    window.open_image(str(path))
    before = window.runs_finished
    window.uncrop(1.5)
    doc = window.session.doc
    assert doc.size == (40, 32) and window.generation is not None  # the image shrinks into the middle
    assert doc.mask[0].all() and doc.mask[:, 0].all() and not doc.mask[16, 20]
    wait_for_run(qtbot, window, before)
    assert len(window.session.candidates) > 0
    candidate = window.session.candidates[0]
    assert np.array_equal(window.canvas.image_item.buffer, bgra_from_rgb(candidate))
    qtbot.keyPress(window.canvas, Qt.Key.Key_Backslash)
    shown = window.canvas.image_item.buffer.copy()
    qtbot.keyRelease(window.canvas, Qt.Key.Key_Backslash)
    assert not np.array_equal(shown, bgra_from_rgb(candidate))  # the original (empty border) while held
    assert np.array_equal(window.canvas.image_item.buffer, bgra_from_rgb(candidate))
    window.candidate_strip.changed.setChecked(True)
    changed = window.canvas.changed_item.buffer[..., 3] > 0
    assert not (changed & ~window.session.doc.mask).any()  # nothing changed outside the mask


def test_convert_checkpoint_in_background(make_window, qtbot, tmp_path, dialogs):
    window = make_window()
    dst = tmp_path / "converted.safetensors"
    job = window.convert(str(REFERENCE / "checkpoint-last.pth"), str(dst), str(REFERENCE / "config.json"))
    qtbot.waitUntil(lambda: job.done(), timeout=60000)
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
    assert np.array_equal(window.session.doc.image, original)
    assert window.store.recent("recent/files")[0] == str(path.resolve())
    assert window.recent_menu.actions()[0].text() == str(path.resolve())


def test_the_bundled_models_menu_and_panel_list_the_catalog(make_window, tmp_path):
    from fractal_studio.model.catalog import bundled_models

    folder = tmp_path / "bundled"
    folder.mkdir()
    for name in ("zebra", "photo_64", "animals"):
        (folder / f"{name}.safetensors").write_bytes(b"x")
    window = make_window(models_dir=folder)
    window._fill_bundled_menu()  # what opening the menu does
    assert [action.text() for action in window.bundled_menu.actions()] == ["photo_64", "animals", "zebra"]
    combo = window.model_panel.combo
    assert [combo.itemData(i) for i in range(combo.count())] == [str(m.path) for m in bundled_models(folder)]
    assert "photo_64.safetensors" in window.model_panel.info.text()  # the default, named in the help


def test_missing_x11_libraries_are_named_in_one_line(monkeypatch):
    from fractal_studio.app import main
    from fractal_studio.errors import UserError

    monkeypatch.setattr(main.sys, "platform", "linux")
    monkeypatch.delenv("QT_QPA_PLATFORM", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    found = {"xcb-icccm": "libxcb-icccm.so.4"}
    assert main.missing_display_packages(found.get) == ["libxcb-cursor0", "libxcb-keysyms1"]
    monkeypatch.setenv("QT_QPA_PLATFORM", "offscreen")
    assert main.missing_display_packages(found.get) == []  # no X11 window: nothing needed
    monkeypatch.setenv("QT_QPA_PLATFORM", "xcb")
    monkeypatch.setattr(main, "missing_display_packages", lambda: ["libxcb-cursor0"])
    with pytest.raises(UserError, match="libxcb-cursor0") as error:
        main.launch()
    assert "\n" not in str(error.value) and "apt-get install libxcb-cursor0" in str(error.value)


def qt_plugins(folder, *names):
    (folder / "platforms").mkdir(parents=True)
    for name in names:
        (folder / "platforms" / name).write_bytes(b"")
    return folder


@pytest.mark.parametrize("plugin", ["libqwayland.so", "libqwayland-generic.so", "libqwayland-egl.so"])
def test_a_wayland_session_starts_without_the_x11_libraries(monkeypatch, tmp_path, plugin):
    """Qt 6 opens its window through Wayland when WAYLAND_DISPLAY is set: libxcb-cursor0 is X11's."""
    from fractal_studio.app import main

    monkeypatch.setattr(main.sys, "platform", "linux")
    monkeypatch.setenv("WAYLAND_DISPLAY", "wayland-0")
    plugins = qt_plugins(tmp_path, "libqxcb.so", plugin)
    for platform in (None, "wayland"):
        if platform is None:
            monkeypatch.delenv("QT_QPA_PLATFORM", raising=False)
        else:
            monkeypatch.setenv("QT_QPA_PLATFORM", platform)
        assert main.missing_display_packages({}.get, plugins) == []


def test_the_x11_check_stays_for_x11_and_where_qt_has_no_wayland_plugin(monkeypatch, tmp_path):
    from fractal_studio.app import main

    monkeypatch.setattr(main.sys, "platform", "linux")
    monkeypatch.delenv("QT_QPA_PLATFORM", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    everything = ["libxcb-cursor0", "libxcb-icccm4", "libxcb-keysyms1"]
    with_wayland = qt_plugins(tmp_path / "with", "libqxcb.so", "libqwayland.so")
    assert main.missing_display_packages({}.get, with_wayland) == everything  # an X11 session
    monkeypatch.setenv("WAYLAND_DISPLAY", "wayland-0")
    monkeypatch.setenv("QT_QPA_PLATFORM", "xcb")  # X11 asked for (XWayland) in a Wayland session
    assert main.missing_display_packages({}.get, with_wayland) == everything
    monkeypatch.delenv("QT_QPA_PLATFORM")
    without = qt_plugins(tmp_path / "without", "libqxcb.so")  # a PySide6 built without Wayland
    assert main.missing_display_packages({}.get, without) == everything


def test_pyside6s_own_plugin_folder_is_looked_in():
    from PySide6.QtCore import QLibraryInfo

    from fractal_studio.app import main

    folder = Path(QLibraryInfo.path(QLibraryInfo.LibraryPath.PluginsPath))
    assert main._has_wayland_plugin() == any((folder / "platforms").glob("libqwayland*"))


def test_convert_asks_for_the_model_when_the_checkpoint_does_not_say(make_window, qtbot, tmp_path, dialogs,
                                                                      monkeypatch):
    from PySide6.QtWidgets import QFileDialog, QInputDialog

    asked = []

    def get_item(parent, title, question, choices, *args):
        asked.append((question, choices))
        return choices[-1], True  # "A config.json file…"

    monkeypatch.setattr(QInputDialog, "getItem", get_item)
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, **k: (str(REFERENCE / "config.json"), ""))
    window = make_window()
    dst = tmp_path / "converted.safetensors"
    job = window.convert(str(REFERENCE / "checkpoint-last.pth"), str(dst))  # the toy names no preset
    qtbot.waitUntil(lambda: job.done(), timeout=60000)
    qtbot.waitUntil(lambda: window.model is not None, timeout=20000)
    assert dst.is_file() and not dialogs  # no "--config" message: the app asked instead
    (question, choices), = asked
    assert "does not say" in question and "fmnist_mar_in32" in choices
