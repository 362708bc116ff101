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
    qtbot.waitUntil(lambda: window.stream_events >= 1 or not job.running, timeout=30000)
    assert not dialogs, dialogs
    window.cancel_generation()
    wait_for_run(qtbot, window, before, timeout=10000)
    assert len(after_cancel) <= 1, f"{len(after_cancel)} steps ran after cancel"
    assert window.result is None
    # the canvas shows the unchanged document again, and the UI works
    assert np.array_equal(window.editor.doc.image, original)
    assert np.array_equal(window.canvas.image_item.buffer, bgra_from_rgb(original))
    assert window.generate_action.isEnabled() and window.canvas.painting_enabled
    window.params_panel.iterations.setText("8,4")
    run_to_end(qtbot, window)
    assert window.result is not None and not window.result.cancelled


def test_bad_image_and_bad_model_show_dialogs(window, qtbot, photo, tmp_path, dialogs):
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"this is not an image")
    assert not window.open_image(str(bad))
    assert dialogs and dialogs[-1][0] == "warning" and "broken.png" in dialogs[-1][2]
    assert window.editor.doc is None

    model = window.model
    bad_model = tmp_path / "bad.safetensors"
    bad_model.write_bytes(b"\x00" * 64)
    window.load_model_path(str(bad_model))
    qtbot.waitUntil(lambda: len(dialogs) == 2, timeout=10000)
    assert "bad.safetensors" in dialogs[-1][2]
    assert window.model is model  # the previous model stays loaded

    path, original = photo
    assert open_at_100_percent(window, path)
    drag(qtbot, window.canvas, [(20, 16), (22, 16)])
    run_to_end(qtbot, window)
    assert window.result is not None


def test_close_during_run_cancels(window, qtbot, photo):
    path, _ = photo
    window.open_image(str(path))
    window.editor.set_mask(np.ones((32, 40), bool), "all")
    window.params_panel.iterations.setText("")
    job = window.generate()
    qtbot.waitUntil(lambda: window.stream_events >= 1, timeout=30000)
    window.close()
    assert not job.running
    assert job.cancel_event.is_set()
    assert window.last_cancel_wait < 5
