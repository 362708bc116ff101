"""The app as a desktop application: its names and icon, Help › About, Help › Open log folder, the
rotating log and the crash reports (logs.AppLog)."""

from __future__ import annotations

import logging
import subprocess
import sys
import threading

import pytest
from PySide6.QtCore import QUrl
from PySide6.QtGui import QDesktopServices, QGuiApplication

from fractal_studio import __version__, logs, paths
from fractal_studio.app.about import AboutDialog
from fractal_studio.desktop import DESKTOP_ID


def test_the_application_has_its_desktop_id_names_and_icon(qapp):
    from fractal_studio.app.main import configure

    names = qapp.applicationName(), qapp.applicationDisplayName(), qapp.desktopFileName()
    try:
        configure(qapp)
        assert QGuiApplication.desktopFileName() == DESKTOP_ID
        assert qapp.applicationName() == "fractal-studio"
        assert qapp.applicationDisplayName() == "Fractal Studio"
        assert qapp.applicationVersion() == __version__
        sizes = {size.width() for size in qapp.windowIcon().availableSizes()}
        assert {16, 32, 48, 256} <= sizes
    finally:
        qapp.setApplicationName(names[0])
        qapp.setApplicationDisplayName(names[1])
        qapp.setDesktopFileName(names[2])


def test_the_window_has_the_icon_and_the_help_menu_items(make_window):
    window = make_window()
    assert not window.windowIcon().isNull()
    help_action = window.menuBar().actions()[-1]  # held: PySide6 6.7 frees a temporary's menu at once
    help_menu = help_action.menu()
    texts = [action.text().replace("&", "") for action in help_menu.actions()]
    assert "Open log folder" in texts and "About Fractal Studio" in texts


def test_about_says_version_model_device_and_licences(window, monkeypatch, qtbot):
    shown = []
    monkeypatch.setattr(AboutDialog, "exec", lambda self: shown.append(self) or 0)
    dialog = window.show_about()
    assert shown == [dialog]
    text = dialog.text()
    assert f"Version: Fractal Studio {__version__}" in text
    side = window.model.config.resolution
    assert f"Model: toy_cols ({window.model.config.name}, {side}×{side}), {window.model_path}" in text
    assert f"Device: {window.session.loaded.device}" in text
    assert "MIT License" in text and "LGPL-3.0" in text and "PyTorch" in text
    assert f"Logs: {paths.log_dir()}" in text
    assert "Model licence: a model file from elsewhere" in text  # the toy model is no bundled one
    dialog.copy()
    assert QGuiApplication.clipboard().text() == text
    qtbot.addWidget(dialog)


def test_about_names_a_bundled_models_card_and_says_when_none_is_loaded(make_window, monkeypatch):
    from fractal_studio.app import about
    from fractal_studio.model.catalog import MODELS_DIR

    assert about.model_facts(None) == [("Model", "none loaded")]

    class Loaded:
        path = str(MODELS_DIR / "photo_64.safetensors")
        device = "cpu"

        class model:  # noqa: N801
            class config:  # noqa: N801
                name = "photo_mar_in64"
                resolution = 64

    lines = dict(about.model_facts(Loaded))
    assert "photo_64.md" in lines["Model licence"] and lines["Device"] == "cpu"


def test_open_log_folder_opens_the_users_log_folder(make_window, monkeypatch):
    opened = []
    monkeypatch.setattr(QDesktopServices, "openUrl", lambda url: opened.append(url) or True)
    window = make_window()
    (action,) = [a for a in window.findChildren(type(window.about_action)) if a.text() == "Open &log folder"]
    action.trigger()
    assert opened == [QUrl.fromLocalFile(str(paths.log_dir()))] and paths.log_dir().is_dir()


def test_a_crash_reported_from_another_thread_is_shown_in_the_window(make_window, qtbot, dialogs, tmp_path):
    window = make_window()
    report = tmp_path / "crash-1.txt"
    thread = threading.Thread(target=lambda: window.crashReported.emit(str(report)))
    thread.start()
    thread.join()
    qtbot.waitUntil(lambda: len(dialogs) == 1, timeout=5000)
    kind, title, text = dialogs[0]
    assert kind == "warning" and title == "Internal error" and str(report) in text


@pytest.fixture
def app_log(tmp_path):
    crashes = []
    started = logs.AppLog(tmp_path / "log", on_crash=crashes.append)
    started.crashes = crashes
    yield started
    started.close()


def test_the_log_file_records_our_notes_and_rotates(app_log):
    logging.getLogger("fractal_studio.test").info("a note for the log")
    logging.getLogger("fractal_studio.test").debug("not at INFO")
    app_log.handler.flush()
    text = (app_log.folder / logs.LOG_NAME).read_text()
    assert f"Fractal Studio {__version__} started" in text
    assert "INFO fractal_studio.test [MainThread]: a note for the log" in text
    assert "not at INFO" not in text
    app_log.handler.maxBytes = 500
    for k in range(20):
        logging.getLogger("fractal_studio.test").warning("line %d %s", k, "x" * 60)
    names = {path.name for path in app_log.folder.iterdir()}
    assert {logs.LOG_NAME, f"{logs.LOG_NAME}.1", f"{logs.LOG_NAME}.2", f"{logs.LOG_NAME}.3"} <= names
    assert f"{logs.LOG_NAME}.4" not in names


def test_an_uncaught_exception_writes_a_crash_report_and_calls_the_previous_hook(app_log, monkeypatch):
    previous = []
    monkeypatch.setattr(app_log, "previous_hook", lambda *info: previous.append(info[0]))
    try:
        raise RuntimeError("boom in a slot")
    except RuntimeError:
        sys.excepthook(*sys.exc_info())
    (report,) = app_log.crashes
    text = report.read_text()
    assert report.parent == app_log.folder and report.name.startswith("crash-")
    assert f"Fractal Studio {__version__} crash report" in text and "thread: MainThread" in text
    assert "RuntimeError: boom in a slot" in text and "Traceback" in text
    assert previous == [RuntimeError]
    app_log.handler.flush()
    assert "CRITICAL" in (app_log.folder / logs.LOG_NAME).read_text()


def test_an_exception_in_a_thread_writes_a_crash_report(app_log, monkeypatch):
    monkeypatch.setattr(app_log, "previous_thread_hook", lambda args: None)

    def fail():
        raise ValueError("boom in a worker")

    thread = threading.Thread(target=fail, name="worker-7")
    thread.start()
    thread.join()
    (report,) = app_log.crashes
    assert "thread: worker-7" in report.read_text() and "ValueError: boom in a worker" in report.read_text()


def test_close_restores_the_hooks(tmp_path):
    before = sys.excepthook, threading.excepthook
    started = logs.AppLog(tmp_path)
    assert sys.excepthook != before[0] and threading.excepthook != before[1]
    started.close()
    assert (sys.excepthook, threading.excepthook) == before
    assert not (tmp_path / logs.FAULTS_NAME).exists()  # a clean end leaves no empty fault file
    assert started.handler not in logging.getLogger().handlers


CRASHING = """
import faulthandler, sys
from fractal_studio import logs
logs.AppLog(sys.argv[1])
faulthandler._sigsegv()
"""


def test_a_fatal_crash_leaves_the_python_stacks_and_the_next_start_keeps_them(tmp_path):
    folder = tmp_path / "log"
    died = subprocess.run([sys.executable, "-c", CRASHING, str(folder)], capture_output=True, text=True,
                          timeout=60)
    assert died.returncode != 0
    assert "Fatal Python error" in (folder / logs.FAULTS_NAME).read_text()
    started = logs.AppLog(folder)
    try:
        (fatal,) = folder.glob("crash-*-fatal.txt")
        assert started.earlier_fatal == fatal and "Fatal Python error" in fatal.read_text()
        assert (folder / logs.FAULTS_NAME).read_text() == ""
    finally:
        started.close()
