"""Training and editing decode a file to the same pixels (one decoder under both)."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from fractal_studio.editing.imageio import load_image
from fractal_studio.training import data


def _grey16(path):
    # 0xFF00 is where the two old reductions parted: (v >> 8) gives 255, v // 257 gave 254.
    values = np.array([[0, 0x80FF, 0xFF00], [0xFFFF, 0x0101, 0x7F80]], dtype=np.uint16)
    Image.fromarray(values).save(path)  # Pillow stores uint16 as a 16-bit greyscale PNG


def _exif_rotated_jpeg(path):
    pixels = np.zeros((6, 10, 3), dtype=np.uint8)
    pixels[:, :5] = (200, 30, 30)
    image = Image.fromarray(pixels, "RGB")
    exif = image.getexif()
    exif[0x0112] = 6  # orientation: rotate 90° clockwise to view
    image.save(path, exif=exif, quality=95)


def _palette_trns(path):
    image = Image.fromarray(np.arange(24, dtype=np.uint8).reshape(4, 6) % 4, "P")
    image.putpalette([255, 0, 0, 0, 255, 0, 0, 0, 255, 10, 20, 30])
    image.save(path, transparency=bytes([0, 128, 255, 255]))


def _grey_alpha(path):
    grey = np.tile(np.arange(0, 250, 50, dtype=np.uint8), (3, 1))
    alpha = np.tile(np.array([0, 64, 128, 200, 255], dtype=np.uint8), (3, 1))
    Image.fromarray(np.dstack([grey, alpha]), "LA").save(path)


def _cmyk_jpeg(path):
    cmyk = np.zeros((4, 4, 4), dtype=np.uint8)
    cmyk[..., 0], cmyk[..., 3] = 180, 40
    Image.frombytes("CMYK", (4, 4), cmyk.tobytes()).save(path, quality=95)


CASES = {"16-bit.png": _grey16, "rotated.jpg": _exif_rotated_jpeg, "palette.png": _palette_trns,
         "grey-alpha.png": _grey_alpha, "cmyk.jpg": _cmyk_jpeg}


@pytest.mark.parametrize("name", sorted(CASES))
def test_training_and_editing_decode_the_same_pixels(tmp_path, name):
    path = tmp_path / name
    CASES[name](path)
    edited = load_image(path).pixels
    trained = np.asarray(data.load_rgb(path))
    assert trained.dtype == np.uint8 and trained.shape == edited.shape
    np.testing.assert_array_equal(trained, edited)


def test_the_shared_decoder_applies_the_rules_the_editor_documents(tmp_path):
    """The cases above are not trivially equal: each exercises the rule it names."""
    for name, make in CASES.items():
        make(tmp_path / name)
    grey = np.asarray(data.load_rgb(tmp_path / "16-bit.png"))[..., 0]
    assert grey.tolist() == [[0, 0x80, 0xFF], [0xFF, 0x01, 0x7F]]  # the high byte
    assert np.asarray(data.load_rgb(tmp_path / "rotated.jpg")).shape == (10, 6, 3)  # upright
    palette = np.asarray(data.load_rgb(tmp_path / "palette.png"))
    assert palette[0, 0].tolist() == [255, 255, 255]  # index 0 is fully transparent: white
    assert palette[0, 2].tolist() == [0, 0, 255]  # index 2 is opaque blue
    assert palette[0, 1].tolist() == [127, 255, 127]  # green at alpha 128 over white
    assert np.asarray(data.load_rgb(tmp_path / "grey-alpha.png"))[0, 0].tolist() == [255, 255, 255]
    assert np.asarray(data.load_rgb(tmp_path / "grey-alpha.png"))[0, 4].tolist() == [200, 200, 200]
