"""Truncated and corrupt JPEG and PNG files (#33) are refused in one line, never filled in: libjpeg
decodes a JPEG whose data stops early (even one that still ends with its end-of-image marker) as
flat grey without an error, and Pillow's LOAD_TRUNCATED_IMAGES would do the same for any format.
The check must never refuse a whole file, whatever its encoder settings."""

from __future__ import annotations

import io
import itertools
import struct

import numpy as np
import pytest
from PIL import Image, ImageFile

from fractal_studio.editing.imageio import load_image, load_mask
from fractal_studio.errors import UserError

SHORT = "its image data ends before the"


def noise(width, height, seed=0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


def jpeg(pixels, **options) -> bytes:
    buffer = io.BytesIO()
    block, ImageFile.MAXBLOCK = ImageFile.MAXBLOCK, 1 << 22  # room for progressive noise at quality 100
    try:
        Image.fromarray(pixels).save(buffer, "JPEG", **options)
    finally:
        ImageFile.MAXBLOCK = block
    return buffer.getvalue()


def png(pixels) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "PNG")
    return buffer.getvalue()


def with_size(data: bytes, width: int, height: int) -> bytes:
    """A JPEG whose frame header claims another size: its scan holds the old one's data only."""
    at = next(data.index(m) for m in (b"\xff\xc0", b"\xff\xc2") if m in data)
    return data[:at + 5] + struct.pack(">HH", height, width) + data[at + 9:]


def idat_cut(data: bytes) -> bytes:
    """A PNG whose image data chunk is cut in half, its chunks still in order and IEND at the end."""
    at = data.index(b"IDAT") - 4
    (length,) = struct.unpack(">I", data[at:at + 4])
    half = length // 2
    return data[:at] + struct.pack(">I", half) + b"IDAT" + data[at + 8:at + 8 + half] + b"\0" * 4 + data[-12:]


def idat_flipped(data: bytes) -> bytes:
    at = data.index(b"IDAT") + 4 + 100
    return data[:at] + bytes([data[at] ^ 0xFF]) + data[at + 1:]


SMALL = jpeg(noise(64, 48))
PROGRESSIVE = jpeg(noise(64, 48), progressive=True)
PNG = png(noise(64, 48))

DAMAGED = {
    "a 640×480 header on a 64×48 scan": (with_size(SMALL, 640, 480), f"{SHORT} 640×480 pixels"),
    "the same, progressive": (with_size(PROGRESSIVE, 640, 480), f"{SHORT} 640×480 pixels"),
    "half the scan, then the end-of-image marker": (SMALL[:len(SMALL) // 2] + b"\xff\xd9",
                                                   f"{SHORT} 64×48 pixels"),
    "a JPEG cut in half": (SMALL[:len(SMALL) // 2], "is damaged or incomplete (image file is truncated"),
    "a JPEG cut after its header": (SMALL[:200], "is damaged or incomplete"),
    "a progressive JPEG cut": (PROGRESSIVE[:1500], "is damaged or incomplete (image file is truncated"),
    "a PNG cut": (PNG[:len(PNG) // 2], "is damaged or incomplete (image file is truncated"),
    "a PNG whose image data is cut, IEND kept": (idat_cut(PNG), "is damaged or incomplete"),
    "a PNG with a flipped byte in its image data": (idat_flipped(PNG), "is damaged or incomplete"),
}


@pytest.mark.parametrize("case", list(DAMAGED))
@pytest.mark.parametrize("loader", [load_image, load_mask])
def test_a_damaged_image_is_one_line_naming_the_file(case, loader, tmp_path):
    data, message = DAMAGED[case]
    path = tmp_path / "damaged.jpg"
    path.write_bytes(data)
    with pytest.raises(UserError) as error:
        loader(path)
    text = str(error.value)
    assert "\n" not in text and str(path) in text and message in text, text
    assert "re-export or download it again" in text
    assert path.read_bytes() == data


def test_the_short_scan_is_refused_even_where_pillow_would_fill_it_in(tmp_path, monkeypatch):
    """Someone setting Pillow's global LOAD_TRUNCATED_IMAGES does not make a short JPEG load grey."""
    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", True)
    path = tmp_path / "short.jpg"
    path.write_bytes(with_size(SMALL, 640, 480))
    with Image.open(path) as img:  # what the check stands between: 99% of the pixels flat grey
        img.load()
        assert (np.asarray(img) == 128).all(-1).mean() > 0.9
    with pytest.raises(UserError, match=SHORT):
        load_image(path)


WHOLE = [(size, quality, subsampling, progressive, kind)
         for size, quality, subsampling, progressive, kind in itertools.product(
             [(1, 1), (7, 5), (64, 48), (333, 211)], [5, 75, 100], [0, 2], [False, True],
             ["noise", "flat grey", "gradient"])]


@pytest.mark.parametrize("size, quality, subsampling, progressive, kind", WHOLE)
def test_a_whole_jpeg_is_never_refused(size, quality, subsampling, progressive, kind, tmp_path):
    width, height = size
    if kind == "noise":
        pixels = noise(width, height, seed=width)
    elif kind == "flat grey":  # what a short scan decodes to, but encoded in full
        pixels = np.full((height, width, 3), 128, np.uint8)
    else:
        pixels = np.repeat(np.linspace(0, 255, width, dtype=np.uint8)[None, :, None], height, 0).repeat(3, 2)
    path = tmp_path / "whole.jpg"
    path.write_bytes(jpeg(pixels, quality=quality, subsampling=subsampling, progressive=progressive))
    assert load_image(path).pixels.shape == (height, width, 3)


@pytest.mark.parametrize("variant", ["restart markers", "greyscale", "CMYK", "data after the end", "EXIF"])
def test_other_whole_jpegs_are_not_refused(variant, tmp_path):
    image = Image.fromarray(noise(70, 50))
    buffer = io.BytesIO()
    if variant == "restart markers":
        image.save(buffer, "JPEG", restart_marker_blocks=3)
    elif variant in ("greyscale", "CMYK"):
        image.convert({"greyscale": "L", "CMYK": "CMYK"}[variant]).save(buffer, "JPEG")
    elif variant == "EXIF":
        exif = Image.Exif()
        exif[0x010E] = "a description \xff\xd9 with an end marker in it"
        image.save(buffer, "JPEG", exif=exif)
    else:
        image.save(buffer, "JPEG")
        buffer.write(b"a camera's trailer \xff\xd9\xff\xd8 after the image")
    path = tmp_path / "whole.jpg"
    path.write_bytes(buffer.getvalue())
    assert load_image(path).pixels.shape == (50, 70, 3)
