"""The app's log and crash reports, in the user's log folder (paths.log_dir()). No Qt.

- `fractal-studio.log`: what std logging records at INFO and above (ours and the libraries'),
  rotated at LOG_BYTES into `.1` … `.3`, so the folder stays small;
- `crash-YYYYmmdd-HHMMSS.txt`: one report per uncaught exception, in the main thread
  (sys.excepthook, which Qt slots and asyncio callbacks reach too) or any other
  (threading.excepthook): the versions, the platform and the traceback; the log has it as well;
- `faults.log`: what faulthandler writes when the process dies of a signal (a crash inside native
  code: Qt, PyTorch), the Python stack of every thread; renamed to `crash-…-fatal.txt` at the next
  start so that it is found beside the others.
"""

from __future__ import annotations

import faulthandler
import logging
import logging.handlers
import platform
import sys
import threading
import time
import traceback
from collections.abc import Callable
from pathlib import Path

LOG_NAME = "fractal-studio.log"
FAULTS_NAME = "faults.log"
LOG_BYTES = 1 << 20
LOG_BACKUPS = 3
FORMAT = "%(asctime)s %(levelname)s %(name)s [%(threadName)s]: %(message)s"

log = logging.getLogger(__name__)


class AppLog:
    """The log file and the crash hooks of one run of the app; `close()` undoes them (tests)."""

    def __init__(self, folder: Path, on_crash: Callable[[Path], None] | None = None):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.on_crash = on_crash
        self.handler = logging.handlers.RotatingFileHandler(self.folder / LOG_NAME, maxBytes=LOG_BYTES,
                                                            backupCount=LOG_BACKUPS, encoding="utf-8")
        self.handler.setLevel(logging.INFO)
        self.handler.setFormatter(logging.Formatter(FORMAT))
        root = logging.getLogger()
        root.addHandler(self.handler)
        self.root_level = root.level
        if root.level > logging.INFO or root.level == logging.NOTSET:
            root.setLevel(logging.INFO)
        ours = logging.getLogger("fractal_studio")
        self.our_level = ours.level
        if ours.getEffectiveLevel() > logging.INFO:
            ours.setLevel(logging.INFO)
        self.earlier_fatal = self._keep_earlier_faults()
        self.faults = open(self.folder / FAULTS_NAME, "w", encoding="utf-8")  # noqa: SIM115 (held open)
        self.faulthandler_was_on = faulthandler.is_enabled()
        faulthandler.enable(self.faults, all_threads=True)
        self.previous_hook, self.previous_thread_hook = sys.excepthook, threading.excepthook
        sys.excepthook = self._excepthook
        threading.excepthook = self._thread_excepthook
        self.reports: list[Path] = []
        log.info("Fractal Studio %s started (Python %s, %s)", _version(), platform.python_version(),
                 platform.platform())
        if self.earlier_fatal is not None:
            log.warning("the last run ended in a fatal error; its report is %s", self.earlier_fatal)

    def _keep_earlier_faults(self) -> Path | None:
        faults = self.folder / FAULTS_NAME
        try:
            if faults.stat().st_size == 0:
                return None
            stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(faults.stat().st_mtime))
            target = self.folder / f"crash-{stamp}-fatal.txt"
            faults.replace(target)
            return target
        except OSError:
            return None

    # ------------------------------------------------------------------ hooks
    def _excepthook(self, kind, value, tb) -> None:
        self.report(kind, value, tb, threading.current_thread().name)
        self.previous_hook(kind, value, tb)

    def _thread_excepthook(self, args) -> None:
        if args.exc_type is SystemExit:
            return
        self.report(args.exc_type, args.exc_value, args.exc_traceback,
                    args.thread.name if args.thread is not None else "?")
        self.previous_thread_hook(args)

    def report(self, kind, value, tb, thread: str) -> Path | None:
        """Writes a crash report (and logs it); its path, or None if it could not be written."""
        if issubclass(kind, KeyboardInterrupt):
            return None
        text = "".join(traceback.format_exception(kind, value, tb))
        log.critical("uncaught %s in thread %s:\n%s", kind.__name__, thread, text.rstrip())
        stamp = time.strftime("%Y%m%d-%H%M%S")
        path = self.folder / f"crash-{stamp}.txt"
        for n in range(2, 100):
            if not path.exists():
                break
            path = self.folder / f"crash-{stamp}-{n}.txt"
        header = (f"Fractal Studio {_version()} crash report\n"
                  f"time: {time.strftime('%Y-%m-%d %H:%M:%S %z')}\n"
                  f"thread: {thread}\n"
                  f"python: {platform.python_version()} ({sys.executable})\n"
                  f"platform: {platform.platform()}\n"
                  f"{_library_versions()}\n")
        try:
            path.write_text(header + "\n" + text, encoding="utf-8")
        except OSError as error:
            log.error("could not write the crash report %s (%s)", path, error)
            return None
        self.reports.append(path)
        if self.on_crash is not None:
            try:
                self.on_crash(path)
            except Exception:  # noqa: BLE001 (a hook must not fail in turn)
                log.exception("showing the crash report failed")
        return path

    def close(self) -> None:
        if sys.excepthook == self._excepthook:
            sys.excepthook = self.previous_hook
        if threading.excepthook == self._thread_excepthook:
            threading.excepthook = self.previous_thread_hook
        faulthandler.disable()
        if self.faulthandler_was_on and sys.__stderr__ is not None:
            faulthandler.enable(sys.__stderr__)
        self.faults.close()
        if (self.folder / FAULTS_NAME).stat().st_size == 0:  # a clean end: nothing to keep
            (self.folder / FAULTS_NAME).unlink(missing_ok=True)
        root = logging.getLogger()
        root.removeHandler(self.handler)
        root.setLevel(self.root_level)
        logging.getLogger("fractal_studio").setLevel(self.our_level)
        self.handler.close()


def start_app_log(folder: Path | None = None,
                  on_crash: Callable[[Path], None] | None = None) -> AppLog | None:
    """The app's log in `folder` (default: the user's log folder); None, with a warning on stderr,
    where that folder cannot be written (the app runs on without a log)."""
    from fractal_studio import paths

    folder = paths.log_dir() if folder is None else Path(folder)
    try:
        return AppLog(folder, on_crash)
    except OSError as error:
        log.warning("no log file: %s cannot be written (%s)", folder, error)
        return None


def _version() -> str:
    from fractal_studio import __version__

    return __version__


def _library_versions() -> str:
    parts = []
    for name in ("torch", "numpy", "PySide6", "PIL"):
        module = sys.modules.get(name)
        if module is not None:
            parts.append(f"{name} {getattr(module, '__version__', '?')}")
    return "libraries: " + (", ".join(parts) or "none loaded")
