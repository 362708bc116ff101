"""EditSession: a whole edit without Qt, undo of every kind of step, one run at a time."""

import numpy as np
import pytest
from PIL import Image

from fractal_studio.editing.engine import EditOptions, EditProgress, EditResult
from fractal_studio.editing.imageio import read_png_metadata
from fractal_studio.editing.session import EditSession, LoadedModel
from fractal_studio.editing.windows import Rect
from fractal_studio.errors import UserError

FAST = (4, 2)


@pytest.fixture
def loaded(converted):
    return LoadedModel.load(converted["toy_cols"], "cpu")


@pytest.fixture
def session(tmp_path, loaded):
    y, x = np.mgrid[0:20, 0:24]
    pixels = np.stack([x * 9, y * 11, (x + y) * 5], axis=-1).astype(np.uint8)
    path = tmp_path / "photo.png"
    Image.fromarray(pixels).save(path)
    session = EditSession()
    session.open(path)
    session.loaded = loaded
    return session


def finish(session, run):
    events = list(run.events())
    assert isinstance(events[-1], EditResult) and all(isinstance(e, EditProgress) for e in events[:-1])
    return session.finish_run(run)


def test_a_whole_edit_mask_run_apply_undo_export(session, tmp_path):
    heard = []
    session.listen(lambda kind, rect: heard.append((kind, rect)))
    original = session.doc.image.copy()
    soft = np.full((6, 8), 255, np.uint8)
    soft[:, 0] = 128  # a soft stroke edge
    session.paint(Rect(8, 6, 8, 6), soft)
    assert heard[-1] == ("mask", Rect(8, 6, 8, 6))
    assert session.doc.mask.sum() == 48 and session.doc.coverage[6, 8] == 128
    assert not session.unsaved  # a mask alone is not unsaved work

    run = session.start_run(EditOptions(iterations=FAST, candidates=2, seed=3))
    assert run.weights is not None and run.weights[6, 8] == 128  # the soft edge blends
    assert finish(session, run)
    assert len(session.candidates) == 2
    first = session.candidates[0]
    assert np.array_equal(first[~session.doc.mask], original[~session.doc.mask])

    session.apply(0)
    assert session.unsaved
    assert np.array_equal(session.doc.image, first) and not session.doc.mask.any()
    assert session.candidates == [] and session.history.undo_text == "Apply candidate #1"
    out = tmp_path / "out.png"
    session.export(out)
    record = read_png_metadata(out)
    assert record["candidate"] == "1/2" and record["seed"] == "3" and not session.unsaved
    assert np.array_equal(np.asarray(Image.open(out).convert("RGB")), first)

    assert session.undo()  # the apply: image and soft mask come back
    assert np.array_equal(session.doc.image, original) and session.doc.coverage[6, 8] == 128
    assert session.undo()  # the stroke
    assert not session.doc.mask.any() and not session.undo()
    assert session.redo() and session.redo()
    assert np.array_equal(session.doc.image, first)
    assert not session.unsaved  # back at the exported state
    session.undo()
    assert session.unsaved


def test_mask_operations_are_undoable(session):
    session.rectangle(Rect(2, 2, 6, 5))
    assert session.doc.mask.sum() == 30
    session.grow_mask(2)
    grown = session.doc.mask.sum()
    assert grown > 30
    session.grow_mask(-2)
    shrunk = session.doc.mask.sum()
    assert shrunk < grown
    session.invert_mask()
    assert session.doc.mask.sum() == 20 * 24 - shrunk
    session.clear_mask()
    assert not session.doc.mask.any()
    texts = [step.text for step in session.history.done]
    assert texts == ["Mask rectangle", "Grow mask", "Shrink mask", "Invert mask", "Clear mask"]
    for expected in (20 * 24 - shrunk, shrunk, grown, 30, 0):
        session.undo()
        assert session.doc.mask.sum() == expected


def test_canvas_steps_undo_to_the_same_pixels(session):
    original = session.doc.image.copy()
    session.extend(0, 2, 5, 0)
    assert session.doc.size == (29, 22) and session.doc.mask[:, 24:].all() and session.empty is not None
    session.uncrop(2.0)
    assert session.doc.size == (29, 22)
    session.undo()
    session.undo()
    assert np.array_equal(session.doc.image, original) and session.empty is None
    session.redo()
    assert session.doc.size == (29, 22)


def test_one_run_at_a_time_and_a_replaced_run_delivers_nothing(session):
    session.rectangle(Rect(4, 4, 10, 8))
    first = session.start_run(EditOptions(iterations=FAST, seed=1))
    events = first.events()
    next(events)  # the first run is in flight
    with pytest.raises(UserError, match="in progress"):
        session.start_run(EditOptions(iterations=FAST))
    with pytest.raises(UserError, match="in progress"):
        session.clear_mask()
    session.discard()  # cancels it; its thread would still be finishing
    assert first.cancel.is_set()
    second = session.start_run(EditOptions(iterations=FAST, seed=2))
    for _ in events:  # the old run's remaining events arrive late
        pass
    assert session.finish_run(first) is False  # not current: nothing of it is kept
    assert session.run is second and session.running and session.candidates == []
    assert finish(session, second)
    assert session.run.result is second.result and len(session.candidates) == 1


def test_start_run_explains_what_is_missing(session):
    with pytest.raises(UserError, match="mask is empty"):
        session.start_run(EditOptions())
    session.loaded = None
    with pytest.raises(UserError, match="no model"):
        session.start_run(EditOptions())
    with pytest.raises(UserError, match="no image"):
        EditSession().invert_mask()
    with pytest.raises(UserError, match="no candidate"):
        session.apply(0)


def test_a_sessions_runs_share_its_measured_speeds_and_another_session_keeps_its_own(session, loaded):
    """The ranking and compositing speeds a run measures are kept for the session's next runs
    (their time left counts on them); a second session in the same process starts from the guess."""
    from fractal_studio.editing.timing import EditSpeeds

    guess = EditSpeeds().rank.seconds_per_unit
    session.rectangle(Rect(6, 4, 10, 8))
    run = session.start_run(EditOptions(iterations=FAST, candidates=3, seed=1))
    assert run.speeds is session.speeds
    assert finish(session, run)
    measured = session.speeds.rank.seconds_per_unit
    assert measured != guess  # the ranking of three candidates was measured
    varied = session.vary_detail(5)
    assert varied.speeds is session.speeds
    other = EditSession()
    assert other.speeds is not session.speeds and other.speeds.rank.seconds_per_unit == guess


def test_set_model_is_refused_while_a_run_goes_and_announced_when_it_changes(session, loaded):
    heard = []
    session.listen(lambda kind, rect: heard.append(kind))
    session.set_model(loaded)  # the same model: nothing to announce
    assert heard == []
    session.rectangle(Rect(6, 4, 10, 8))
    heard.clear()
    run = session.start_run(EditOptions(iterations=FAST, seed=1))
    with pytest.raises(UserError, match="run is in progress"):
        session.set_model(None)
    assert session.loaded is loaded and "model" not in heard
    assert finish(session, run)
    session.set_model(None)
    assert session.loaded is None and heard[-1] == "model"
    with pytest.raises(UserError, match="no model is loaded"):
        session.start_run(EditOptions(iterations=FAST))
    session.set_model(loaded)
    assert session.loaded is loaded and heard[-1] == "model"
    assert len(session.candidates) == 1  # the earlier run's candidate stays
