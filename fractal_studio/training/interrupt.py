"""Stopping a training run cleanly on Ctrl+C or SIGTERM (`kill`): after the step under way, with
a checkpoint, so that `--resume` continues exactly."""

from __future__ import annotations

import logging
import signal
import threading

log = logging.getLogger(__name__)


class StopRequest:
    """Ctrl+C or SIGTERM during training: finish the current step, write a checkpoint, stop.
    A second Ctrl+C stops at once (the last checkpoint stays as it was)."""

    def __init__(self):
        self.requested = False
        self.previous = {}
        if threading.current_thread() is not threading.main_thread():
            return  # signal handlers can only be installed from the main thread
        for number in (signal.SIGINT, signal.SIGTERM):
            self.previous[number] = signal.signal(number, self._handle)

    def _handle(self, number, frame) -> None:
        if self.requested and number == signal.SIGINT:
            raise KeyboardInterrupt
        self.requested = True
        log.warning("stopping after this step (a checkpoint will be written); press Ctrl+C again to stop "
                    "at once")

    def uninstall(self) -> None:
        for number, handler in self.previous.items():
            signal.signal(number, handler)
        self.previous = {}
