"""Starts the Qt application on a qasync event loop (asyncio and Qt share one loop)."""

from __future__ import annotations

import asyncio
import sys

from fractal_studio.app.settings import APP


def _resolve_model(model: str | None) -> str | None:
    if not model:
        return None
    from fractal_studio.model.catalog import resolve_model

    try:
        return str(resolve_model(model))
    except Exception:  # a bad name is reported by the window when it tries to load it
        return model


M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter number
LARGE_BUFFER = 16 << 20  # bytes: see return_large_buffers_to_the_system


def return_large_buffers_to_the_system() -> None:
    """Asks glibc to give every freed buffer of LARGE_BUFFER (16 MB) or more straight back to the system.

    By default glibc raises its threshold after the first large free, so later 24 MB masks and
    coverage arrays come from the heap, whose freed space stays with the process: editing a
    6000x4000 photo then grows by ~70 MB per run. Smaller buffers stay on the heap and are reused:
    at 1 MB, each of the many few-MB arrays of a model pass or of the colour matching was a new
    mapping whose pages fault in again, and the app composited candidates twice as slowly as the
    CLI (3.1 s of system time in an 8 s run; 0.8 s at 16 MB, peak memory 908 -> 917 MB in
    benchmarks/app_memory.py). Elsewhere (macOS, Windows, musl) nothing to do."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes
    import ctypes.util

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.mallopt(M_MMAP_THRESHOLD, LARGE_BUFFER)
    except (OSError, AttributeError):  # not glibc
        pass


def event_loop(app, driven_by_qt: bool = False):
    """The asyncio loop on Qt's event loop (qasync), made the current one.

    driven_by_qt: for tests and scripts that process Qt events themselves (pytest-qt's waitUntil,
    processEvents) instead of calling run_forever: asyncio then counts the loop as running at once,
    and the app's coroutines advance whenever Qt processes events."""
    import qasync

    loop = qasync.QEventLoop(app, already_running=driven_by_qt)
    asyncio.set_event_loop(loop)
    return loop


# Libraries Qt's X11 plugin loads that fresh Debian/Ubuntu desktops (and minimal systems) lack,
# with the package that provides each. Without them Qt aborts with a page of plugin diagnostics.
XCB_LIBRARIES = (("xcb-cursor", "libxcb-cursor0"), ("xcb-icccm", "libxcb-icccm4"),
                 ("xcb-keysyms", "libxcb-keysyms1"))


def missing_display_packages(find=None, plugins=None) -> list[str]:
    """The packages to install before Qt can open a window on X11 (Linux with the xcb plugin).

    None in a Wayland session that Qt will open its window in: with WAYLAND_DISPLAY set and
    QT_QPA_PLATFORM unset (Qt 6 then tries Wayland first) or naming wayland, where PySide6 has its
    Wayland plugin. `plugins`: Qt's plugin folder (default: PySide6's)."""
    import ctypes.util
    import os

    if not sys.platform.startswith("linux"):
        return []
    platform = os.environ.get("QT_QPA_PLATFORM", "")
    if os.environ.get("WAYLAND_DISPLAY") and platform in ("", "wayland") and _has_wayland_plugin(plugins):
        return []
    if not (platform or "xcb").startswith("xcb"):
        return []
    find = find or ctypes.util.find_library
    return [package for library, package in XCB_LIBRARIES if find(library) is None]


def _has_wayland_plugin(plugins=None) -> bool:
    from pathlib import Path

    if plugins is None:
        from PySide6.QtCore import QLibraryInfo

        plugins = QLibraryInfo.path(QLibraryInfo.LibraryPath.PluginsPath)
    return any((Path(plugins) / "platforms").glob("libqwayland*"))  # libqwayland(-generic, -egl).so


def launch(image: str | None = None, model: str | None = None) -> int:
    from fractal_studio.errors import UserError

    missing = missing_display_packages()
    if missing:
        raise UserError(f"the app needs {', '.join(missing)} to open a window on X11; install them "
                        f"(e.g. sudo apt-get install {' '.join(missing)}), or use the command line")
    from PySide6.QtCore import Qt
    from PySide6.QtGui import QGuiApplication
    from PySide6.QtWidgets import QApplication

    return_large_buffers_to_the_system()
    QGuiApplication.setHighDpiScaleFactorRoundingPolicy(Qt.HighDpiScaleFactorRoundingPolicy.PassThrough)
    app = QApplication.instance() or QApplication(sys.argv)
    configure(app)
    from fractal_studio.app.main_window import MainWindow
    from fractal_studio.logs import start_app_log

    app_log = start_app_log()  # the log file, and crash reports from here on
    try:
        loop = event_loop(app)
        closed = asyncio.Event()
        app.aboutToQuit.connect(closed.set)
        window = MainWindow()
        if app_log is not None:
            app_log.on_crash = lambda report: window.crashReported.emit(str(report))
        window.show()
        window.start(image=image, model=_resolve_model(model))
        with loop:
            loop.run_until_complete(closed.wait())
    finally:
        if app_log is not None:
            app_log.close()
    return 0


def configure(app) -> None:
    """The application's names and icon: Qt's folders (if anything asks for them) are ours, and the
    desktop (the Wayland app id, the task bar) matches the window with the installed desktop entry."""
    from fractal_studio import __version__, paths
    from fractal_studio.app.about import app_icon
    from fractal_studio.desktop import DESKTOP_ID

    app.setApplicationName(paths.APP_NAME)
    app.setApplicationDisplayName(APP)
    app.setApplicationVersion(__version__)
    app.setDesktopFileName(DESKTOP_ID)
    app.setWindowIcon(app_icon())
