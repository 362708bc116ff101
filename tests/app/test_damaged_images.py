"""Opening a truncated image in the app (#33): a dialog with the one-line reason, the open document
kept, never a picture that is mostly flat grey."""

from __future__ import annotations

import io
import struct

import numpy as np
from PIL import Image

from .helpers import open_at_100_percent


def short_jpeg(path) -> None:
    """A JPEG whose header says 64×64 and whose scan holds 16×16 pixels (it ends properly)."""
    buffer = io.BytesIO()
    pixels = np.random.default_rng(0).integers(0, 256, (16, 16, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(buffer, "JPEG")
    data = buffer.getvalue()
    at = data.index(b"\xff\xc0")
    path.write_bytes(data[:at + 5] + struct.pack(">HH", 64, 64) + data[at + 9:])


def test_a_jpeg_whose_data_stops_early_is_refused_and_the_open_image_stays(window, photo, tmp_path, dialogs):
    path, original = photo
    open_at_100_percent(window, path)
    short = tmp_path / "short.jpg"
    short_jpeg(short)
    assert not window.open_image(str(short))
    kind, _, text = dialogs[-1]
    assert kind == "warning" and "short.jpg" in text and "its image data ends before the 64×64 pixels" in text
    assert "\n" not in text
    assert np.array_equal(window.session.doc.image, original)


def test_a_cut_png_is_refused_with_one_line(window, photo, tmp_path, dialogs):
    path, _ = photo
    cut = tmp_path / "cut.png"
    cut.write_bytes(path.read_bytes()[:len(path.read_bytes()) // 2])
    assert not window.open_image(str(cut))
    assert dialogs and "cut.png is damaged or incomplete" in dialogs[-1][2]
    assert window.session.document is None
