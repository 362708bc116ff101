"""Mouse gestures on the canvas, in image coordinates."""

from __future__ import annotations

from PySide6.QtCore import QPoint, QPointF, Qt


def view_point(canvas, x: float, y: float) -> QPoint:
    return canvas.mapFromScene(QPointF(x, y))


def drag(qtbot, canvas, points, button=Qt.MouseButton.LeftButton) -> None:
    """Press at the first point, move through the others, release at the last (image coordinates)."""
    viewport = canvas.viewport()
    first = view_point(canvas, *points[0])
    qtbot.mousePress(viewport, button, pos=first)
    for x, y in points[1:]:
        qtbot.mouseMove(viewport, view_point(canvas, x, y))
    qtbot.mouseRelease(viewport, button, pos=view_point(canvas, *points[-1]))


def wait_for_run(qtbot, window, finished_before: int, timeout=60000) -> None:
    """Until the GUI thread has handled the end of the run started after `finished_before` runs."""
    qtbot.waitUntil(lambda: window.runs_finished > finished_before, timeout=timeout)


def run_to_end(qtbot, window, timeout=60000):
    before = window.runs_finished
    job = window.generate()
    assert job is not None, "generate() did not start a job"
    wait_for_run(qtbot, window, before, timeout)
    return job


def open_at_100_percent(window, path, centre=(20, 16)) -> bool:
    """Opens an image in the window, shown 1:1 around `centre` so image coordinates map to pixels."""
    opened = window.open_image(str(path))
    window.canvas.actual_size()
    window.canvas.centerOn(*centre)
    return opened


def paint(qtbot, window, points, size: float, hardness: float = 1.0) -> None:
    """One brush stroke through `points` (image coordinates)."""
    window.canvas.set_brush(size=size, hardness=hardness)
    drag(qtbot, window.canvas, points)
