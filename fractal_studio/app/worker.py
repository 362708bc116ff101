"""Blocking work off the UI thread, awaited from the UI's asyncio loop (qasync ties it to Qt's).

    loaded = await call(LoadedModel.load, path, "auto")          # a function's value
    async with Stream(run.events()) as events:                    # a generator's items
        async for event in events: draw(event)

The work runs in a worker thread; its items arrive on the UI thread in order, through a queue that
belongs to that one stream, so nothing from one run can reach the code awaiting another. Progress
that arrives faster than the UI draws is thinned to the newest item (`replaceable`). Leaving the
`async with` block (normally, by an error or by cancellation of the awaiting task) waits for the
thread to end, so the next run never overlaps it; `cancel` is the worker's own stop flag, set first.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import importlib
import sys
import threading
from collections.abc import Callable, Iterator

from PySide6.QtCore import QTimer

from fractal_studio.errors import UserError

# What the worker threads run. They are imported on the UI thread, before the first work is handed
# to a worker: a module imported for the first time in a worker runs exec() for its dataclasses
# (and compiles it without a cached .pyc), and CPython 3.11 can fail with "SystemError: AST
# constructor recursion depth mismatch" when two threads compile at once. Not when the app starts:
# they bring in PyTorch (1.5 s on a 2-core Xeon), and the window shows first.
ENGINE_MODULES = ("fractal_studio.editing.imageio", "fractal_studio.model.convert",
                  "fractal_studio.model.weights", "fractal_studio.sampling")

EXECUTOR = concurrent.futures.ThreadPoolExecutor(max_workers=2, thread_name_prefix="fractal-studio")
_END = object()


async def call(function: Callable, *args):
    """`function(*args)` in a worker thread, awaited."""
    await engine_imported()
    return await asyncio.get_running_loop().run_in_executor(EXECUTOR, function, *args)


async def engine_imported() -> None:
    """Imports ENGINE_MODULES on this (the UI) thread, once. The first time, the window that is
    being shown gets its first paint before the UI thread is busy importing."""
    if all(name in sys.modules for name in ENGINE_MODULES):
        return
    await asyncio.sleep(0.05)
    for name in ENGINE_MODULES:
        importlib.import_module(name)


class _Failed:
    def __init__(self, error: BaseException):
        self.error = error


class Stream:
    """`items`: an iterator, or a function called as items(emit) that emits items as it goes."""

    def __init__(self, items: Iterator | Callable[[Callable[[object], None]], object],
                 cancel: threading.Event | None = None,
                 replaceable: Callable[[object], bool] = lambda item: False):
        self.items = items
        self.cancel = cancel
        self.replaceable = replaceable
        self.finished = threading.Event()  # set when the worker thread has returned
        self._queue: asyncio.Queue | None = None
        self._future = None

    async def __aenter__(self) -> Stream:
        await engine_imported()
        loop = asyncio.get_running_loop()
        self._queue = asyncio.Queue()
        self._future = loop.run_in_executor(EXECUTOR, self._pump, loop)
        return self

    async def __aexit__(self, *exc) -> None:
        if exc[0] is not None and self.cancel is not None:
            self.cancel.set()
        # Shielded: a second cancellation must not leave the thread running behind the UI's back.
        await asyncio.shield(self._future)

    def __aiter__(self):
        return self

    async def __anext__(self):
        item = await self._queue.get()
        while self.replaceable(item) and not self._queue.empty():
            item = self._queue.get_nowait()  # a newer item is waiting: skip this one
        if item is _END:
            raise StopAsyncIteration
        if isinstance(item, _Failed):
            raise item.error
        return item

    def _pump(self, loop) -> None:
        try:
            try:
                if callable(self.items):
                    self.items(lambda item: self._send(loop, item))
                else:
                    for item in self.items:
                        self._send(loop, item)
            except BaseException as error:  # re-raised on the UI thread by __anext__
                self._send(loop, _Failed(error))
            self._send(loop, _END)
        finally:
            self.finished.set()

    def _send(self, loop, item) -> None:
        try:
            loop.call_soon_threadsafe(self._queue.put_nowait, item)
        except RuntimeError:  # the loop is closed: the app is quitting and nobody listens
            pass


def inside_a_task() -> bool:
    """Whether an asyncio task is running right now (its step, not merely awaiting)."""
    try:
        return asyncio.current_task() is not None
    except RuntimeError:  # no running loop
        return False


def modal(show: Callable[[], object]) -> None:
    """Shows a modal dialog now, or, inside a task's step, right after it: a dialog runs a nested
    event loop, and qasync would run other tasks' steps inside this one (asyncio forbids that)."""
    if inside_a_task():
        QTimer.singleShot(0, show)
    else:
        show()


async def ask(question: Callable[[], object]):
    """The answer of a modal dialog asked from a coroutine, shown outside the task's step."""
    answer = asyncio.get_running_loop().create_future()

    def show() -> None:
        try:
            answer.set_result(question())
        except Exception as error:  # handed to the coroutine
            answer.set_exception(error)

    QTimer.singleShot(0, show)
    return await answer


def failure_message(error: BaseException) -> str:
    """One line for the user about a failed run."""
    if isinstance(error, UserError):
        return str(error)
    if isinstance(error, MemoryError):
        return "Not enough memory for this run. Try a smaller mask, fewer candidates or the CPU."
    detail = f"{type(error).__name__}: {error}"
    if "out of memory" in detail.lower():
        return "The device ran out of memory. Try fewer candidates, a smaller mask or the CPU."
    return detail
