"""Pins in the engine: known pixels to the sampler at every scale where a model pixel is all pins,
kept bit for bit by the compositing (feathering and colour matching included)."""

from __future__ import annotations

import numpy as np
import pytest

import fractal_studio.sampling as sampling
from fractal_studio.editing.document import Document
from fractal_studio.editing.engine import EditOptions, EditResult, run_edit
from fractal_studio.editing.pins import pinned, with_pins
from fractal_studio.editing.session import EditSession, LoadedModel
from fractal_studio.errors import UserError

FAST = (4, 2)


def inputs(size: int = 16):
    image = np.random.default_rng(0).integers(0, 256, (size, size, 3), dtype=np.uint8)
    mask = np.zeros((size, size), bool)
    mask[3:13, 2:14] = True
    pins = np.zeros((size, size, 4), np.uint8)
    pins[5, 4] = (250, 10, 20, 255)
    pins[9:11, 8:10] = (30, 240, 60, 255)
    pins[12, 13] = (1, 2, 3, 254)  # not quite opaque: not a pin
    pins[0, 0] = (9, 9, 9, 255)    # outside the mask: ignored
    return image, mask, pins


def run(model, image, mask, pins=None, **options) -> EditResult:
    events = list(run_edit(model, image, mask, EditOptions(iterations=FAST, seed=2, work_scale="native",
                                                           **options), pins=pins))
    return events[-1]


def test_only_opaque_pins_inside_the_mask_count():
    image, mask, pins = inputs()
    where = pinned(pins, mask)
    assert where.sum() == 5 and where[5, 4] and not where[12, 13] and not where[0, 0]
    applied = with_pins(image, mask, pins, blank=mask.copy())
    assert not (applied.mask & where).any() and not (applied.blank & where).any()
    assert np.array_equal(applied.image[where], pins[where][:, :3])
    assert np.array_equal(applied.image[~where], image[~where]) and applied.image is not image


def test_the_sampler_knows_the_pins(toy_model, monkeypatch):
    image, mask, pins = inputs()
    requests = []
    real = sampling.sample

    def recording(model, request, cancel=None):
        requests.append(request)
        return real(model, request, cancel)

    monkeypatch.setattr(sampling, "sample", recording)
    result = run(toy_model, image, mask, pins)
    (request,) = requests  # one 16×16 window at native pixels
    where = pinned(pins, mask)
    assert request.known[where].all() and not request.known[mask & ~where].any()
    assert np.array_equal(request.canvas[where], pins[where][:, :3])
    assert np.array_equal(result.candidates[0][where], pins[where][:, :3])


@pytest.mark.parametrize("extra", [{"feather": 3}, {"seamless": True}, {"candidates": 2}])
def test_compositing_keeps_every_pin_bit_exact(toy_model, extra):
    image, mask, pins = inputs()
    where = pinned(pins, mask)
    result = run(toy_model, image, mask, pins, **extra)
    for candidate in result.candidates:
        assert np.array_equal(candidate[where], pins[where][:, :3])
        assert np.array_equal(candidate[~mask], image[~mask])
        assert (candidate[mask & ~where] != image[mask & ~where]).any()


def test_pins_of_another_size_are_refused(toy_model):
    image, mask, _ = inputs()
    with pytest.raises(UserError, match="the pins must have the image's size"):
        run_edit(toy_model, image, mask, EditOptions(), pins=np.zeros((8, 8, 4), np.uint8))
    with pytest.raises(UserError, match="RGBA uint8"):
        run_edit(toy_model, image, mask, EditOptions(), pins=np.zeros((16, 16, 3), np.uint8))


def test_the_session_passes_the_document_pins(toy_model, converted):
    image, mask, pins = inputs()
    session = EditSession()
    session.loaded = LoadedModel(path=str(converted["toy_cols"]), model=toy_model, sha256="x", device="cpu")
    doc = Document(image, mask)
    doc.set_pins(pins)
    session.set_document(doc)
    run_ = session.start_run(EditOptions(iterations=FAST, seed=1, work_scale="native"))
    list(run_.events())
    session.finish_run(run_)
    session.apply(0)
    where = pinned(pins, mask)
    assert np.array_equal(session.doc.image[where], pins[where][:, :3])
    session.undo()
    assert np.array_equal(session.doc.image, image)


def pinning_session(image, mask) -> EditSession:
    session = EditSession()
    session.set_document(Document(image, mask))
    return session


def test_a_pin_dot_lands_only_inside_the_mask_and_undo_takes_it_away():
    image, mask, _ = inputs()
    session = pinning_session(image, mask)
    heard = []
    session.listen(lambda kind, rect: heard.append((kind, rect)))
    box = session.pin((3.0, 4.0), (10, 20, 30))  # at the mask's left edge (column 2)
    where = pinned(session.doc.pins, session.doc.mask)
    assert box is not None and heard[-1] == ("pins", box) and where.any()
    assert (session.doc.pins[..., 3] == 255).sum() == where.sum()  # nothing pinned outside the mask
    assert np.array_equal(session.doc.pins[where][:, :3], np.tile([10, 20, 30], (where.sum(), 1)))
    assert session.pin((0.5, 0.5), (1, 1, 1)) is None  # outside the mask: nothing to pin
    assert session.history.undo_text == "Pin"
    session.undo()
    assert not session.doc.pins.any()
    session.redo()
    assert np.array_equal(pinned(session.doc.pins, session.doc.mask), where)
    session.pin((3.0, 4.0), (0, 0, 0), erase=True)
    assert not pinned(session.doc.pins, session.doc.mask).any()


def test_pins_survive_the_saved_history_and_a_canvas_extension():
    from fractal_studio.editing.history import history_from_arrays, history_to_arrays

    image, mask, _ = inputs()
    session = pinning_session(image, mask)
    session.pin((6.0, 6.0), (200, 100, 50))
    session.extend(2, 1, 0, 0)
    assert session.doc.pins.shape == (17, 18, 4) and session.doc.pins[7, 8, 3] == 255
    session.undo()
    assert session.doc.pins.shape == (16, 16, 4) and session.doc.pins[6, 6, 3] == 255
    session.redo()
    arrays, records = history_to_arrays(session.history)
    pins = session.doc.pins.copy()
    restored = pinning_session(session.doc.image, session.doc.mask)
    restored.doc.set_pins(pins)
    restored.doc.blank = session.doc.blank.copy()
    restored.doc.origin = session.doc.origin
    assert restored.restore_history(history_from_arrays(arrays, records))
    restored.undo()
    restored.undo()
    assert not restored.doc.pins.any()
