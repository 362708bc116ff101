"""Cancelling a run, and user errors shown in dialogs while the app keeps working."""

from __future__ import annotations

import numpy as np

from fractal_studio.app.layers import bgra_from_rgb

from .helpers import drag, open_at_100_percent, paint, run_to_end, wait_for_run


def test_cancel_mid_run_stops_within_a_step(window, qtbot, photo, monkeypatch, dialogs):
    import fractal_studio.editing.engine as engine

    after_cancel = []
    real = engine.run_edit

    def watched(model, image, mask, options, cancel=None, model_hash=None, **kwargs):
        for event in real(model, image, mask, options, cancel=cancel, model_hash=model_hash, **kwargs):
            if cancel.is_set() and isinstance(event, engine.EditProgress):
                after_cancel.append(event)
            yield event

    monkeypatch.setattr(engine, "run_edit", watched)
    path, original = photo
    open_at_100_percent(window, path)
    paint(qtbot, window, [(8, 8), (32, 24)], size=30)
    window.params_panel.iterations.setText("")  # the model's defaults: a longer run
    before = window.runs_finished
    job = window.generate()
    assert job is not None, dialogs
    qtbot.waitUntil(lambda: window.stream_events >= 1 or job.done(), timeout=30000)
    assert not dialogs, dialogs
    window.cancel_generation()
    wait_for_run(qtbot, window, before, timeout=10000)
    assert len(after_cancel) <= 1, f"{len(after_cancel)} steps ran after cancel"
    assert not window.session.candidates
    # the canvas shows the unchanged document again, and the UI works
    assert np.array_equal(window.session.doc.image, original)
    assert np.array_equal(window.canvas.image_item.buffer, bgra_from_rgb(original))
    assert window.generate_action.isEnabled() and window.canvas.painting_enabled
    window.params_panel.iterations.setText("8,4")
    run_to_end(qtbot, window)
    assert len(window.session.candidates) > 0


def test_bad_image_and_bad_model_show_dialogs(window, qtbot, photo, tmp_path, dialogs):
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"this is not an image")
    assert not window.open_image(str(bad))
    assert dialogs and dialogs[-1][0] == "warning" and "broken.png" in dialogs[-1][2]
    assert window.session.document is None

    model = window.model
    bad_model = tmp_path / "bad.safetensors"
    bad_model.write_bytes(b"\x00" * 64)
    window.load_model_path(str(bad_model))
    qtbot.waitUntil(lambda: len(dialogs) == 2, timeout=10000)
    assert "bad.safetensors" in dialogs[-1][2]
    assert window.model is model  # the previous model stays loaded, and the status bar says so
    assert "still using" in window.status.currentMessage()

    path, original = photo
    assert open_at_100_percent(window, path)
    drag(qtbot, window.canvas, [(20, 16), (22, 16)])
    run_to_end(qtbot, window)
    assert len(window.session.candidates) > 0


def test_close_during_run_cancels(window, qtbot, photo):
    path, _ = photo
    window.open_image(str(path))
    window.session.set_mask(np.ones((32, 40), bool), "all")
    window.params_panel.iterations.setText("")
    job = window.generate()
    qtbot.waitUntil(lambda: window.stream_events >= 1, timeout=30000)
    run, stream = window.session.run, window.stream
    window.close()
    assert stream.finished.is_set()  # the worker thread has ended
    assert run.cancel.is_set()
    assert window.last_cancel_wait < 5
    qtbot.waitUntil(job.done, timeout=5000)


def test_bad_iterations_are_shown_when_generate_is_pressed(window, qtbot, photo, dialogs):
    path, _ = photo
    open_at_100_percent(window, path)
    paint(qtbot, window, [(8, 8), (32, 24)], size=30)
    for text in ("8,x", "0", "-1"):
        window.params_panel.iterations.setText(text)
        assert window.generate() is None  # not the model's default iterations instead
        assert dialogs[-1][:2] == ("warning", "Cannot generate") and repr(text) in dialogs[-1][2]
    assert window.generation is None and window.generate_action.isEnabled()


def test_a_run_started_while_the_last_is_still_in_flight_gets_only_its_own_events(window, qtbot, photo,
                                                                                   monkeypatch):
    """Cancel, then Generate at once: the first run's worker is still sending events; none of them
    (and not its result) may reach the second run's canvas, progress or candidates."""
    from fractal_studio.editing import session as session_module

    made_by = {}  # id(event) -> the run that produced it
    kept = []  # keeps the events alive so their ids stay unique
    events = session_module.Run.events

    def tagged(run):
        for event in events(run):
            made_by[id(event)] = run.number
            kept.append(event)
            yield event

    monkeypatch.setattr(session_module.Run, "events", tagged)
    drawn = []  # (the run being drawn, the run that made the event)
    show = window._show_progress
    window._show_progress = lambda run, event: (drawn.append((run.number, made_by[id(event)])),
                                                show(run, event))
    path, _ = photo
    open_at_100_percent(window, path)
    paint(qtbot, window, [(8, 8), (32, 24)], size=30)
    window.params_panel.iterations.setText("")  # the model's defaults: a longer run
    first = window.generate()
    qtbot.waitUntil(lambda: window.stream_events >= 1, timeout=30000)
    first_run = window.session.run
    window.cancel_generation()
    window.params_panel.iterations.setText("8,4")
    second = window.generate()  # the first run's worker has not stopped yet
    assert second is not None and second is not first
    qtbot.waitUntil(second.done, timeout=60000)
    assert first.done() and first_run.cancel.is_set()
    assert {drawing for drawing, _ in drawn} == {first_run.number, window.session.run.number}
    assert all(drawing == maker for drawing, maker in drawn), drawn
    assert window.session.run is not first_run and len(window.session.candidates) == 2
    assert window.candidate_strip.list.count() == 2


def test_dialogs_from_a_coroutine_open_outside_its_step(window, qtbot, dialogs):
    """A modal dialog runs a nested event loop; opened inside a task's step, qasync would run other
    tasks' steps inside it ("Cannot enter into task"). Such dialogs open right after the step."""
    import asyncio

    from fractal_studio.app.worker import ask

    seen = []

    async def failing_run():
        window.show_error("Generation failed", "out of memory")
        seen.append(len(dialogs))  # not shown inside the step
        seen.append(await ask(lambda: 6 * 7))

    async def other():  # another task that becomes ready while the dialog is up
        await asyncio.sleep(0)
        seen.append("other ran")

    tasks = [asyncio.ensure_future(failing_run()), asyncio.ensure_future(other())]
    qtbot.waitUntil(lambda: all(t.done() for t in tasks), timeout=5000)
    assert [t.exception() for t in tasks] == [None, None]
    assert seen[0] == 0 and 42 in seen and "other ran" in seen
    assert dialogs[-1][:2] == ("warning", "Generation failed")


def test_progress_says_when_the_candidates_are_being_finished(window, qtbot, photo):
    from fractal_studio.editing.engine import EditProgress
    from fractal_studio.geometry import Rect

    path, _ = photo
    open_at_100_percent(window, path)
    window.result_rect = Rect(0, 0, 1, 1)  # as at the start of a run

    def shown(sampled: float, eta: float) -> str:
        event = EditProgress(window=2, windows=3, level=1, step=3, steps=4, fraction=0.9,
                             rect=Rect(0, 0, 2, 2), preview=np.zeros((2, 2, 3), np.uint8), elapsed=9.0,
                             eta=eta, sampled=sampled)
        window._show_progress(None, event)
        return window.progress_label.text()

    assert shown(0.8, 12.0) == "window 2/3 · level 2 · step 3/4 · 90% ETA 12s"
    assert shown(1.0, 2.0) == "finishing the candidates · 90% ETA 2s"


def test_the_time_left_counts_down_between_progress_events(window, qtbot, photo, monkeypatch):
    """The engine estimates only at its events; between them the shown time left keeps falling."""
    from fractal_studio.app import generation
    from fractal_studio.editing.engine import EditProgress
    from fractal_studio.geometry import Rect

    path, _ = photo
    open_at_100_percent(window, path)
    window.result_rect = Rect(0, 0, 1, 1)
    now = [100.0]
    monkeypatch.setattr(generation.time, "monotonic", lambda: now[0])
    event = EditProgress(window=1, windows=1, level=0, step=2, steps=8, fraction=0.25, rect=Rect(0, 0, 2, 2),
                         preview=np.zeros((2, 2, 3), np.uint8), elapsed=3.0, eta=9.0, sampled=0.25)
    window._show_progress(None, event)
    assert window.progress_label.text() == "level 1 · step 2/8 · 25% ETA 9s"
    now[0] += 4.2
    window.show_time_left()  # what the timer calls
    assert window.progress_label.text() == "level 1 · step 2/8 · 25% ETA 5s"
    now[0] += 30.0  # later than estimated: it shows 0 s, not a negative time
    window.show_time_left()
    assert window.progress_label.text() == "level 1 · step 2/8 · 25% ETA 0s"


def test_the_time_left_timer_runs_only_during_a_run(window, qtbot, photo):
    path, _ = photo
    open_at_100_percent(window, path)
    paint(qtbot, window, [(8, 8), (32, 24)], size=30)
    assert not window.time_left_timer.isActive()
    active_at_events = []
    show = window._show_progress

    def showing(run, event):
        active_at_events.append(window.time_left_timer.isActive())
        show(run, event)

    window._show_progress = showing
    run_to_end(qtbot, window)
    assert active_at_events and all(active_at_events)
    assert not window.time_left_timer.isActive() and window.progress_label.text() == ""
