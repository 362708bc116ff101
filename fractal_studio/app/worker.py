"""Background jobs: a generator of events iterated in a worker thread, its events delivered as signals.

Under the app's qasync loop a job runs through `loop.run_in_executor` (awaitable); without a running
asyncio loop (tests, scripts) it is submitted to the same executor. Signals emitted from the worker
thread reach GUI-thread slots queued, so the event loop never waits for the model. Cancelling sets a
threading.Event that the sampler checks between steps.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
import time
import traceback
from collections.abc import Callable, Iterator

from PySide6.QtCore import QObject, Signal

from fractal_studio.errors import UserError

_EXECUTOR = concurrent.futures.ThreadPoolExecutor(max_workers=2, thread_name_prefix="fractal-studio")


class Job(QObject):
    """Runs `work(cancel_event)` (a generator of events, or a function returning a value)."""

    event = Signal(object)  # every yielded event
    done = Signal(object)  # the last yielded event (generators) or the return value
    failed = Signal(str)  # a message for the user
    stopped = Signal()  # always last, after done/failed

    def __init__(self, work: Callable[[threading.Event], Iterator | object], parent=None):
        super().__init__(parent)
        self.work = work
        self.cancel_event = threading.Event()
        self.future: concurrent.futures.Future | asyncio.Future | None = None
        self._finished = threading.Event()
        self.started_at = 0.0

    @property
    def running(self) -> bool:
        return self.future is not None and not self._finished.is_set()

    def start(self) -> None:
        self.started_at = time.perf_counter()
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            loop = None
        if loop is not None:
            self.future = asyncio.ensure_future(self._run_async(loop))
        else:
            self.future = _EXECUTOR.submit(self._run)

    async def _run_async(self, loop) -> None:
        await loop.run_in_executor(_EXECUTOR, self._run)

    def cancel(self) -> None:
        self.cancel_event.set()

    def wait(self, timeout: float = 30.0) -> bool:
        """Blocks until the worker thread has returned (used when closing the window)."""
        return self._finished.wait(timeout)

    def _run(self) -> None:
        try:
            outcome = self.work(self.cancel_event)
            if isinstance(outcome, Iterator):
                last = None
                for item in outcome:
                    last = item
                    self.event.emit(item)
                outcome = last
            self.done.emit(outcome)
        except UserError as error:
            self.failed.emit(str(error))
        except MemoryError:
            self.failed.emit("Not enough memory for this run. "
                             "Try a smaller mask, fewer candidates or the CPU.")
        except Exception as error:  # shown to the user; the app keeps running
            detail = traceback.format_exception_only(type(error), error)[-1].strip()
            if "out of memory" in detail.lower():
                detail = "The device ran out of memory. Try fewer candidates, a smaller mask or the CPU."
            self.failed.emit(detail)
        finally:
            self._finished.set()
            self.stopped.emit()
