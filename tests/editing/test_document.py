"""The Document: canvas, mask, canvas changes, undo snapshots, applying results."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from fractal_studio.editing.document import Document, DocumentState, Rect
from fractal_studio.editing.engine import EditOptions, EditResult
from fractal_studio.errors import UserError


def image(width=7, height=5, seed=0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


def test_new_document():
    pixels = image()
    doc = Document(pixels, path="a.png")
    assert doc.size == (7, 5) and doc.origin == (0, 0) and doc.path == "a.png"
    assert doc.mask.shape == (5, 7) and doc.mask.dtype == bool and not doc.mask.any()
    assert doc.class_id is None and doc.applied is None and doc.notes == ()
    pixels[0, 0] = 1 - pixels[0, 0]
    assert not np.array_equal(doc.image, pixels)  # the document owns a copy
    with pytest.raises(UserError, match="uint8 RGB"):
        Document(np.zeros((5, 7), np.uint8))


def test_rect():
    r = Rect(2, 3, 10, 4)
    assert (r.right, r.bottom) == (12, 7)
    assert r.intersect(Rect(0, 0, 5, 5)) == Rect(2, 3, 3, 2)


def test_masks():
    doc = Document(image())
    mask = np.zeros((5, 7), bool)
    mask[1:3, 2:4] = True
    doc.set_mask(mask)
    mask[0, 0] = True
    assert doc.mask.sum() == 4  # copied
    doc.invert_mask()
    assert doc.mask.sum() == 35 - 4
    doc.clear_mask()
    assert not doc.mask.any()
    with pytest.raises(UserError, match="7×5"):
        doc.set_mask(np.zeros((7, 5), bool))
    with pytest.raises(UserError, match="boolean"):
        doc.set_mask(np.zeros((5, 7), np.uint8))
    assert Document(image(), mask).mask.sum() == 5


def test_extend_canvas():
    pixels = image()
    doc = Document(pixels)
    doc.mask[2, 3] = True
    doc.extend_canvas(1, 2, 3, 4)
    assert doc.size == (11, 11) and doc.origin == (1, 2)
    assert np.array_equal(doc.image[2:7, 1:8], pixels)
    assert not doc.image[:2].any() and not doc.image[:, 8:].any()
    expected = np.ones((11, 11), bool)
    expected[2:7, 1:8] = False
    expected[4, 4] = True  # the old mask moved with the image
    assert np.array_equal(doc.mask, expected)
    assert doc.blank.sum() == 121 - 35
    doc.extend_canvas(2, 0, 0, 0)
    assert doc.origin == (3, 2)
    with pytest.raises(UserError, match=">= 0"):
        doc.extend_canvas(-1, 0, 0, 0)


def test_uncrop():
    pixels = np.full((40, 60, 3), 90, np.uint8)
    doc = Document(pixels)
    doc.uncrop(2)
    assert doc.size == (60, 40)
    assert np.array_equal(doc.image[10:30, 15:45], np.full((20, 30, 3), 90, np.uint8))
    assert doc.mask[:10].all() and doc.mask[30:].all() and doc.mask[:, :15].all() and doc.mask[:, 45:].all()
    assert not doc.mask[10:30, 15:45].any()
    assert doc.origin == (15, 10)
    with pytest.raises(UserError, match="greater than 1"):
        doc.uncrop(1.0)
    with pytest.raises(UserError, match="greater than 1"):
        doc.uncrop(0.5)


def test_snapshot_and_restore():
    doc = Document(image())
    state = doc.snapshot()
    assert isinstance(state, DocumentState)
    with pytest.raises(ValueError):
        state.image[0, 0] = 0  # read-only
    doc.extend_canvas(0, 0, 4, 0)
    doc.mask[:] = False
    doc.restore(state)
    assert doc.size == (7, 5) and doc.origin == (0, 0) and not doc.mask.any()
    doc.mask[0, 0] = True  # the restored arrays are the document's own
    assert not state.mask[0, 0]


def _result(doc: Document, value: int, count: int = 2) -> EditResult:
    candidates = []
    for k in range(count):
        out = doc.image.copy()
        out[doc.mask] = value + k
        candidates.append(out)
    return EditResult(candidates=candidates, cancelled=False, elapsed=0.0, metadata={}, options=EditOptions())


def test_apply_records_the_result_and_clears_the_mask():
    doc = Document(image())
    doc.mask[1, 1] = True
    first = _result(doc, 10)
    doc.apply(first, 1)
    assert doc.image[1, 1].tolist() == [11, 11, 11] and not doc.mask.any()
    assert doc.applied == {"candidate": "2/2"}
    doc.apply(first, 0)  # any candidate again
    assert doc.applied == {"candidate": "1/2"} and doc.image[1, 1].tolist() == [10, 10, 10]
    with pytest.raises(UserError, match="no candidate 2"):
        doc.apply(first, 2)
    doc.extend_canvas(1, 0, 0, 0)
    with pytest.raises(UserError, match="another canvas size"):
        doc.apply(first, 0)


def test_export_records_the_applied_result(tmp_path):
    from fractal_studio.editing.imageio import read_png_metadata

    source = tmp_path / "src.png"
    Image.fromarray(image()).save(source)
    doc = Document.open(source)
    doc.mask[1, 1] = True
    result = _result(doc, 10)
    object.__setattr__(result, "metadata", {"seed": "5"})
    doc.apply(result, 1)
    doc.export(tmp_path / "out.png")
    assert read_png_metadata(tmp_path / "out.png") == {"seed": "5", "candidate": "2/2"}
    assert np.array_equal(np.asarray(Image.open(tmp_path / "out.png")), doc.image)
    with pytest.raises(UserError, match="refusing to overwrite"):
        doc.export(source)
    doc.export(source, overwrite_source=True)


def test_open_marks_transparent_pixels(tmp_path):
    rgba = np.zeros((6, 8, 4), np.uint8)
    rgba[..., :3] = 50
    rgba[..., 3] = 255
    rgba[2:4, 5:7, 3] = 0
    path = tmp_path / "hole.png"
    Image.fromarray(rgba, "RGBA").save(path)
    doc = Document.open(path)
    assert doc.size == (8, 6) and doc.path == str(path)
    assert doc.mask.sum() == 4 and doc.mask[2:4, 5:7].all()
    assert doc.notes and doc.blank[2:4, 5:7].all()
