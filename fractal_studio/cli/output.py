"""What a command writes on stderr besides its results (which go to stdout): log lines, through
std logging, and one progress line.

`-q` shows warnings and errors only (no progress, no notes); the default adds the notes and
summaries (INFO); `-v` adds the debug lines of Fractal Studio's own modules, `-vv` everyone's.

On a terminal the progress line rewrites itself in place (at most ten times a second, cut to the
terminal's width) and a log line clears it first; elsewhere (a pipe, a file, CI's log) it is a
plain line at each tenth of the work, so a log holds no carriage returns or escape sequences.
"""

from __future__ import annotations

import logging
import math
import shutil
import sys
import time

LIBRARY = "fractal_studio"


# ------------------------------------------------------------------------------------ logging
class Console(logging.Handler):
    """Log lines on the stderr of the moment (so a test's captured stderr sees them too); other
    libraries' notes only with `everyone` (-vv), their warnings always."""

    def __init__(self, level: int, everyone: bool = False):
        super().__init__(level)
        self.everyone = everyone

    def emit(self, record: logging.LogRecord) -> None:
        stream = sys.stderr
        if stream is None:  # pythonw (the Windows GUI entry point): no console
            return
        if not self.everyone and record.levelno < logging.WARNING and not record.name.startswith(LIBRARY):
            return
        try:
            text = self.format(record)
            Progress.clear_line(stream)
            stream.write(text + "\n")
            stream.flush()
        except Exception:  # noqa: BLE001 (logging's own policy: never raise from a handler)
            self.handleError(record)


class ConsoleFormat(logging.Formatter):
    PREFIX = {logging.DEBUG: "debug: ", logging.WARNING: "warning: ",
              logging.ERROR: "fractal-studio: error: ", logging.CRITICAL: "fractal-studio: error: "}

    def format(self, record: logging.LogRecord) -> str:
        text = record.getMessage()
        if record.levelno == logging.DEBUG and not record.name.startswith(LIBRARY):
            text = f"{record.name}: {text}"
        if record.exc_info and logging.getLogger(LIBRARY).isEnabledFor(logging.DEBUG):
            text += "\n" + self.formatException(record.exc_info)
        return self.PREFIX.get(record.levelno, "") + text


def level_of(verbose: int, quiet: bool) -> int:
    if quiet:
        return logging.WARNING
    return logging.INFO if verbose <= 0 else logging.DEBUG


def start_console(verbose: int = 0, quiet: bool = False) -> Console:
    """Installs the console handler on the root logger (replacing one installed before); returns it,
    for `stop_console`."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        if isinstance(handler, Console):
            root.removeHandler(handler)
    level = level_of(verbose, quiet)
    handler = Console(level, everyone=verbose >= 2)
    handler.setFormatter(ConsoleFormat())
    root.addHandler(handler)
    logging.getLogger(LIBRARY).setLevel(level)
    if verbose >= 2:
        root.setLevel(logging.DEBUG)
    return handler


def stop_console(handler: Console) -> None:
    logging.getLogger().removeHandler(handler)


# ------------------------------------------------------------------------------------ progress
class Progress:
    """A command's one progress line on stderr: `step(fraction, text)` as the work goes on, `done()`
    at its end (however it ends). Quiet: nothing at all."""

    active: Progress | None = None  # the line on the terminal now, cleared before a log line

    def __init__(self, quiet: bool = False, stream=None, width: int = 28, interval: float = 0.1):
        self.quiet = quiet
        self.stream = stream
        self.width = width
        self.interval = interval
        self.last = -math.inf  # when the terminal's line was last drawn
        self.last_tenth = -2  # the tenth of the work last shown off a terminal; -1: unknown
        self.shown = False  # a line is on the terminal now

    @property
    def out(self):
        return self.stream if self.stream is not None else sys.stderr

    @property
    def tty(self) -> bool:
        return bool(getattr(self.out, "isatty", lambda: False)())

    PIPE_INTERVAL = 10.0  # seconds between lines off a terminal while the share done is unknown

    def step(self, fraction: float | None, text: str, eta: float | None = None,
             new_stage: bool = False) -> None:
        """`fraction` of the work done (None: unknown, only `text` is shown), `eta` seconds left;
        `new_stage`: shown however soon after the last line."""
        if self.quiet or self.out is None:
            return
        now = time.monotonic()
        soon = now - self.last < (self.interval if self.tty else self.PIPE_INTERVAL)
        if new_stage:
            self.last_tenth = -1
        elif self.tty:
            if soon and (fraction is None or fraction < 1):
                return
        elif fraction is None:  # a line per ten seconds
            if soon and self.last_tenth == -1:
                return
            self.last_tenth = -1
        else:  # a line per tenth of the work
            tenth = int(min(max(fraction, 0.0), 1.0) * 10)
            if tenth == self.last_tenth:
                return
            self.last_tenth = tenth
        self.last = now
        line = text
        if fraction is not None:
            fraction = min(max(fraction, 0.0), 1.0)
            filled = int(round(fraction * self.width))
            line = f"[{'#' * filled}{'-' * (self.width - filled)}] {fraction * 100:5.1f}% {text}"
        if eta is not None:
            line += f" ETA {duration(eta)}"
        self.show(line)

    def show(self, line: str) -> None:
        out = self.out
        if self.tty:
            columns = shutil.get_terminal_size((80, 24)).columns
            out.write("\r" + line[:max(columns - 1, 10)] + "\033[K")  # one row: \r must reach its start
            Progress.active = self
            self.shown = True
        else:
            out.write(line + "\n")
        out.flush()

    def clear(self) -> None:
        if self.shown:
            self.out.write("\r\033[K")
            self.out.flush()
            self.shown = False
        if Progress.active is self:
            Progress.active = None

    @classmethod
    def clear_line(cls, stream) -> None:
        """Before a log line on `stream`: the progress line there is cleared (redrawn at its next step)."""
        line = cls.active
        if line is not None and line.out is stream:
            line.clear()
            line.last = -math.inf

    def done(self, message: str | None = None) -> None:
        """Clears the line; `message` (if any) is logged as a note."""
        if not self.quiet and self.out is not None:
            self.clear()
        if message:
            logging.getLogger(LIBRARY + ".cli").info(message)


def duration(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "?"
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m{seconds:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"
