"""Image file loading/saving: formats, modes, alpha, EXIF, size limits, damaged files, atomic saves."""

from __future__ import annotations

import errno
import os
import struct
import sys
import warnings
import zlib

import numpy as np
import pytest
from PIL import Image

from fractal_studio.editing import imageio
from fractal_studio.editing.imageio import (
    array_sha256,
    load_image,
    load_mask,
    read_png_metadata,
    save_png,
)
from fractal_studio.errors import UserError


def _noise(h: int, w: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def _png_header_only(path, width: int, height: int) -> None:
    """A PNG whose header claims width×height (1-bit grey) but holds no pixel data: costs nothing to make,
    and a loader that decodes before checking the size would fail with a different error."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b"")
    )


# --- formats -----------------------------------------------------------------------------------------


def test_rgb_png_round_trip_is_bit_exact(tmp_path):
    pixels = _noise(37, 53)
    save_png(tmp_path / "a.png", pixels)
    loaded = load_image(tmp_path / "a.png")
    assert loaded.pixels.dtype == np.uint8 and loaded.pixels.shape == (37, 53, 3)
    np.testing.assert_array_equal(loaded.pixels, pixels)
    assert loaded.transparent is None
    assert loaded.notes == ()
    assert loaded.source_format == "PNG"


def test_jpeg_opens(tmp_path):
    Image.new("RGB", (40, 30), (200, 100, 50)).save(tmp_path / "a.jpg", quality=95)
    loaded = load_image(tmp_path / "a.jpg")
    assert loaded.source_format == "JPEG"
    assert loaded.pixels.shape == (30, 40, 3)
    assert np.abs(loaded.pixels.astype(int) - [200, 100, 50]).max() <= 3


@pytest.mark.parametrize(
    ("name", "options", "fmt"),
    [("a.webp", {"lossless": True}, "WEBP"), ("a.bmp", {}, "BMP"), ("a.tif", {}, "TIFF")],
)
def test_lossless_formats_open_exactly(tmp_path, name, options, fmt):
    pixels = _noise(9, 11)
    Image.fromarray(pixels).save(tmp_path / name, **options)
    loaded = load_image(tmp_path / name)
    assert loaded.source_format == fmt
    np.testing.assert_array_equal(loaded.pixels, pixels)


# --- modes and alpha ----------------------------------------------------------------------------------


def test_palette_png_with_transparency(tmp_path):
    im = Image.new("P", (4, 3), 1)
    im.putpalette([255, 0, 0, 0, 0, 255])
    im.putpixel((2, 1), 0)
    im.save(tmp_path / "p.png", transparency=0)
    loaded = load_image(tmp_path / "p.png")
    expected_mask = np.zeros((3, 4), bool)
    expected_mask[1, 2] = True
    np.testing.assert_array_equal(loaded.transparent, expected_mask)
    assert tuple(loaded.pixels[1, 2]) == (255, 255, 255)  # fully transparent red composites to white
    assert tuple(loaded.pixels[0, 0]) == (0, 0, 255)
    assert any("palette" in n for n in loaded.notes)
    assert any("unknown" in n for n in loaded.notes)


def test_palette_png_without_transparency_has_no_mask(tmp_path):
    im = Image.new("P", (4, 3), 1)
    im.putpalette([255, 0, 0, 0, 200, 0])
    im.save(tmp_path / "p.png")
    loaded = load_image(tmp_path / "p.png")
    assert loaded.transparent is None
    assert (loaded.pixels == [0, 200, 0]).all()


def test_greyscale_l(tmp_path):
    grey = np.arange(12, dtype=np.uint8).reshape(3, 4) * 20
    Image.fromarray(grey, "L").save(tmp_path / "l.png")
    loaded = load_image(tmp_path / "l.png")
    np.testing.assert_array_equal(loaded.pixels, np.repeat(grey[:, :, None], 3, axis=2))
    assert loaded.transparent is None
    assert any("greyscale" in n for n in loaded.notes)


def test_greyscale_la_composites_over_white(tmp_path):
    la = np.zeros((2, 2, 2), np.uint8)
    la[..., 0] = 50
    la[..., 1] = [[255, 0], [200, 255]]
    Image.fromarray(la, "LA").save(tmp_path / "la.png")
    loaded = load_image(tmp_path / "la.png")
    np.testing.assert_array_equal(loaded.transparent, [[False, True], [False, False]])
    assert tuple(loaded.pixels[0, 0]) == (50, 50, 50)
    assert tuple(loaded.pixels[0, 1]) == (255, 255, 255)
    assert tuple(loaded.pixels[1, 0]) == (94,) * 3  # round((50*200 + 255*55) / 255)


def test_rgba_composited_over_white_with_transparent_mask(tmp_path):
    rgba = np.zeros((1, 4, 4), np.uint8)
    rgba[..., :3] = (0, 100, 200)
    rgba[..., 3] = [0, 100, 200, 255]
    Image.fromarray(rgba, "RGBA").save(tmp_path / "a.png")
    loaded = load_image(tmp_path / "a.png")
    np.testing.assert_array_equal(loaded.transparent, [[True, True, False, False]])
    a = np.array([0, 100, 200, 255])[:, None]
    expected = np.rint((np.array([0, 100, 200]) * a + 255 * (255 - a)) / 255)
    np.testing.assert_array_equal(loaded.pixels[0], expected)
    assert loaded.pixels.shape == (1, 4, 3)


def test_opaque_rgba_reports_no_transparency(tmp_path):
    rgba = np.dstack([_noise(5, 6), np.full((5, 6), 255, np.uint8)])
    Image.fromarray(rgba, "RGBA").save(tmp_path / "a.png")
    loaded = load_image(tmp_path / "a.png")
    assert loaded.transparent is None
    np.testing.assert_array_equal(loaded.pixels, rgba[..., :3])
    assert loaded.notes == ()


def test_16bit_greyscale_png_scaled_to_8bit(tmp_path):
    values = np.array([[0, 256 * 100, 65535, 255]], np.uint16)
    Image.fromarray(values).save(tmp_path / "g16.png")
    loaded = load_image(tmp_path / "g16.png")
    np.testing.assert_array_equal(loaded.pixels[0, :, 0], [0, 100, 255, 0])
    assert (loaded.pixels[..., 0] == loaded.pixels[..., 2]).all()
    assert any("16-bit greyscale" in n for n in loaded.notes)


def test_48bit_rgb_png_keeps_high_byte(tmp_path):
    cv2 = pytest.importorskip("cv2")
    bgr = np.zeros((2, 2, 3), np.uint16)
    bgr[0, 0] = (256 * 7 + 200, 256 * 100, 65535)
    assert cv2.imwrite(str(tmp_path / "rgb16.png"), bgr)
    loaded = load_image(tmp_path / "rgb16.png")
    assert tuple(loaded.pixels[0, 0]) == (255, 100, 7)


def test_float_tiff_in_unit_range(tmp_path):
    Image.fromarray(np.array([[0.0, 0.5, 1.0]], np.float32), "F").save(tmp_path / "f.tif")
    loaded = load_image(tmp_path / "f.tif")
    np.testing.assert_array_equal(loaded.pixels[0, :, 1], [0, 128, 255])
    assert any("floating-point" in n for n in loaded.notes)


def test_32bit_integer_tiff_is_stretched(tmp_path):
    Image.fromarray(np.array([[-1000, 0, 1_000_000]], np.int32), "I").save(tmp_path / "i.tif")
    loaded = load_image(tmp_path / "i.tif")
    assert loaded.pixels[0, 0, 0] == 0 and loaded.pixels[0, 2, 0] == 255
    assert any("32-bit" in n for n in loaded.notes)


def test_one_bit_image(tmp_path):
    im = Image.new("1", (3, 2), 0)
    im.putpixel((1, 0), 1)
    im.save(tmp_path / "b.png")
    loaded = load_image(tmp_path / "b.png")
    assert tuple(loaded.pixels[0, 1]) == (255, 255, 255) and tuple(loaded.pixels[1, 1]) == (0, 0, 0)


def test_cmyk_tiff_converted_with_note(tmp_path):
    Image.new("CMYK", (4, 4), (0, 255, 0, 0)).save(tmp_path / "c.tif")
    loaded = load_image(tmp_path / "c.tif")
    assert (loaded.pixels == [255, 0, 255]).all()  # no magenta ink absorbs green only
    assert any("CMYK" in n for n in loaded.notes)


@pytest.mark.parametrize(("orientation", "red_block"), [(6, (slice(0, 8), slice(8, 16))),
                                                        (8, (slice(24, 32), slice(0, 8)))])
def test_exif_orientation_rotates(tmp_path, orientation, red_block):
    stored = np.full((16, 32, 3), 255, np.uint8)
    stored[:8, :8] = (255, 0, 0)  # marks the stored top-left corner
    exif = Image.Exif()
    exif[0x0112] = orientation
    Image.fromarray(stored).save(tmp_path / "e.jpg", exif=exif.tobytes(), quality=95)
    loaded = load_image(tmp_path / "e.jpg")
    assert loaded.pixels.shape == (32, 16, 3)
    # 6: the viewer turns the stored image clockwise, so stored top-left ends top-right; 8: bottom-left.
    block = loaded.pixels[red_block].astype(int)
    assert (block[2:6, 2:6, 0] > 200).all() and (block[2:6, 2:6, 1] < 60).all()
    assert f"rotated according to EXIF orientation {orientation}" in loaded.notes


# --- size limits ----------------------------------------------------------------------------------------


def test_size_checked_from_header_before_decoding(tmp_path):
    # 144 megapixels: over Pillow's warning threshold but under its hard error, so our check decides.
    _png_header_only(tmp_path / "big.png", 12000, 12000)
    filters_before = list(warnings.filters)
    with pytest.raises(UserError) as info:
        load_image(tmp_path / "big.png")
    message = str(info.value)
    assert "big.png is 12000×12000 pixels (144 megapixels)" in message
    assert "up to 100 megapixels. Downscale it first." in message
    assert warnings.filters == filters_before  # the local warning filter was undone


def test_pillow_decompression_bomb_error_becomes_user_error(tmp_path):
    _png_header_only(tmp_path / "bomb.png", 20000, 20000)  # 400 Mpx: Pillow refuses in Image.open
    with pytest.raises(UserError, match=r"bomb\.png is 400 megapixels; .*up to 100 megapixels"):
        load_image(tmp_path / "bomb.png")


def test_max_pixels_threshold(tmp_path, monkeypatch):
    Image.fromarray(_noise(10, 20)).save(tmp_path / "a.png")
    monkeypatch.setattr(imageio, "MAX_PIXELS", 200)
    assert load_image(tmp_path / "a.png").pixels.shape == (10, 20, 3)  # exactly at the limit: fine
    monkeypatch.setattr(imageio, "MAX_PIXELS", 199)
    with pytest.raises(UserError, match="is 20×10 pixels"):
        load_image(tmp_path / "a.png")
    with pytest.raises(UserError, match="is 20×10 pixels"):
        load_mask(tmp_path / "a.png")


def test_max_side(tmp_path):
    _png_header_only(tmp_path / "strip.png", 31000, 2)
    with pytest.raises(UserError, match="31000×2 pixels; .*up to 30000 pixels on a side"):
        load_image(tmp_path / "strip.png")


# --- bad files ------------------------------------------------------------------------------------------


def test_garbage_file(tmp_path):
    (tmp_path / "x.png").write_bytes(b"this is not an image, just some text" * 10)
    with pytest.raises(UserError, match=r"x\.png is not an image Fractal Studio can read"):
        load_image(tmp_path / "x.png")


def test_truncated_png(tmp_path):
    Image.fromarray(_noise(64, 64)).save(tmp_path / "t.png")
    data = (tmp_path / "t.png").read_bytes()
    (tmp_path / "t.png").write_bytes(data[: len(data) // 2])
    with pytest.raises(UserError, match=r"t\.png is damaged or incomplete"):
        load_image(tmp_path / "t.png")


def test_missing_file_directory_and_empty_file(tmp_path):
    with pytest.raises(UserError, match=r"nope\.png does not exist"):
        load_image(tmp_path / "nope.png")
    with pytest.raises(UserError, match="is a folder"):
        load_image(tmp_path)
    (tmp_path / "empty.png").write_bytes(b"")
    with pytest.raises(UserError, match=r"empty\.png is empty"):
        load_image(tmp_path / "empty.png")
    with pytest.raises(UserError, match="does not exist"):
        read_png_metadata(tmp_path / "nope.png")


# --- masks ----------------------------------------------------------------------------------------------


def test_mask_threshold_and_alpha(tmp_path):
    grey = np.array([[0, 127, 128, 255]], np.uint8)
    Image.fromarray(grey, "L").save(tmp_path / "m.png")
    mask = load_mask(tmp_path / "m.png", size=(4, 1))
    assert mask.dtype == bool
    np.testing.assert_array_equal(mask, [[False, False, True, True]])
    rgba = np.full((1, 2, 4), 255, np.uint8)
    rgba[0, 0, 3] = 0  # transparent white counts as black: keep
    Image.fromarray(rgba, "RGBA").save(tmp_path / "ma.png")
    np.testing.assert_array_equal(load_mask(tmp_path / "ma.png"), [[False, True]])


def test_mask_size_mismatch_message(tmp_path):
    Image.new("L", (100, 80), 255).save(tmp_path / "mask.png")
    with pytest.raises(UserError) as info:
        load_mask(tmp_path / "mask.png", size=(517, 389))
    assert str(info.value).endswith(
        "mask.png is 100×80 but the image is 517×389; the mask must have the image's size."
    )


# --- saving ---------------------------------------------------------------------------------------------


def _failing_save(self, fp, *args, **kwargs):
    fp.write(b"\x89PNG partial data")  # a real failure happens part-way through writing
    raise OSError(errno.ENOSPC, "No space left on device")


def test_failed_save_leaves_existing_file_and_no_temp_files(tmp_path, monkeypatch):
    target = tmp_path / "out.png"
    target.write_bytes(b"previous export")
    monkeypatch.setattr(Image.Image, "save", _failing_save)
    with pytest.raises(UserError) as info:
        save_png(target, _noise(4, 4))
    assert "out.png" in str(info.value) and "no space left on device" in str(info.value)
    assert target.read_bytes() == b"previous export"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.png"]


def test_save_into_missing_folder(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        save_png(tmp_path / "no" / "such" / "out.png", _noise(2, 2))


def test_refuses_to_overwrite_source(tmp_path):
    source = tmp_path / "src.png"
    save_png(source, _noise(3, 3))
    before = source.read_bytes()
    (tmp_path / "sub").mkdir()
    same_file_other_spelling = tmp_path / "sub" / ".." / "src.png"
    with pytest.raises(UserError, match="refusing to overwrite the source image .*--overwrite"):
        save_png(same_file_other_spelling, _noise(3, 3, seed=1), source=source)
    assert source.read_bytes() == before
    save_png(source, _noise(3, 3, seed=1), source=source, overwrite_source=True)
    np.testing.assert_array_equal(load_image(source).pixels, _noise(3, 3, seed=1))
    save_png(tmp_path / "other.png", _noise(3, 3), source=source)  # a different name is fine


def test_save_greyscale_and_bad_pixels(tmp_path):
    grey = np.arange(6, dtype=np.uint8).reshape(2, 3) * 40
    save_png(tmp_path / "g.png", grey)
    np.testing.assert_array_equal(load_image(tmp_path / "g.png").pixels[..., 1], grey)
    with pytest.raises(ValueError, match="uint8"):
        save_png(tmp_path / "f.png", np.zeros((2, 2, 3), np.float32))
    with pytest.raises(ValueError, match="shape"):
        save_png(tmp_path / "f.png", np.zeros((2, 2, 4), np.uint8))
    assert not (tmp_path / "f.png").exists()


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX permissions")
def test_saved_file_permissions_follow_umask(tmp_path):
    umask = os.umask(0o022)
    try:
        save_png(tmp_path / "a.png", _noise(2, 2))
    finally:
        os.umask(umask)
    assert (tmp_path / "a.png").stat().st_mode & 0o777 == 0o644  # not mkstemp's 0600


def test_metadata_round_trip(tmp_path):
    metadata = {"model": "fractalmar-base", "seed": "42", "prompt": "ünïcode ✓ text\nline 2", "empty": ""}
    save_png(tmp_path / "m.png", _noise(5, 5), metadata)
    assert read_png_metadata(tmp_path / "m.png") == metadata
    with Image.open(tmp_path / "m.png") as im:  # also readable key by key by other tools
        assert im.text["seed"] == "42" and im.text["prompt"] == metadata["prompt"]
    with pytest.raises(ValueError, match="keyword"):
        save_png(tmp_path / "bad.png", _noise(2, 2), {" leading space": "x"})


def test_read_metadata_without_fractal_studio_chunk(tmp_path):
    Image.fromarray(_noise(2, 2)).save(tmp_path / "none.png")
    assert read_png_metadata(tmp_path / "none.png") == {}
    from PIL.PngImagePlugin import PngInfo

    info = PngInfo()
    info.add_text("Software", "GIMP")
    Image.fromarray(_noise(2, 2)).save(tmp_path / "plain.png", pnginfo=info)
    assert read_png_metadata(tmp_path / "plain.png") == {"Software": "GIMP"}
    (tmp_path / "junk.png").write_bytes(b"junk")
    with pytest.raises(UserError):
        read_png_metadata(tmp_path / "junk.png")


# --- hashes ---------------------------------------------------------------------------------------------


def test_array_sha256():
    a = np.arange(24, dtype=np.uint8).reshape(4, 6)
    assert array_sha256(a) == array_sha256(np.asfortranarray(a))  # layout does not matter
    assert array_sha256(a[:, ::2]) == array_sha256(a[:, ::2].copy())
    assert array_sha256(a) != array_sha256(a.reshape(6, 4))
    assert array_sha256(a) != array_sha256(a.astype(np.int16))
    mask = a > 10
    assert array_sha256(mask) != array_sha256(~mask)
    assert len(array_sha256(mask)) == 64


def _png_chunks(raw: bytes) -> list[tuple[bytes, bytes]]:
    chunks, pos = [], 8
    while pos < len(raw):
        (length,) = struct.unpack(">I", raw[pos:pos + 4])
        chunks.append((raw[pos + 4:pos + 8], raw[pos:pos + 12 + length]))
        pos += 12 + length
    return chunks


def _with_short_image_data(raw: bytes, keep: float) -> bytes:
    """The same PNG whose compressed image data stops early, in a valid chunk, IEND kept."""
    chunks = _png_chunks(raw)
    data = b"".join(chunk[8:-4] for kind, chunk in chunks if kind == b"IDAT")
    data = data[:max(1, int(len(data) * keep))]
    idat = struct.pack(">I", len(data)) + b"IDAT" + data + struct.pack(">I", zlib.crc32(b"IDAT" + data))
    before = b"".join(chunk for kind, chunk in chunks if kind not in (b"IDAT", b"IEND"))
    return raw[:8] + before + idat + chunks[-1][1]


@pytest.mark.parametrize("mode", ["RGB", "RGBA", "L", "P", "I;16"])
@pytest.mark.parametrize("keep", [0.5, 0.99])
def test_a_png_whose_data_stops_early_is_an_error_not_black_rows(tmp_path, mode, keep):
    import io

    from fractal_studio.editing.imageio import load_mask

    rng = np.random.default_rng(0)
    if mode == "I;16":
        image = Image.fromarray(rng.integers(0, 65535, (60, 80), dtype=np.uint16))
    else:
        image = Image.fromarray(rng.integers(0, 256, (60, 80, 3), dtype=np.uint8)).convert(mode)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    damaged = tmp_path / "damaged.png"
    damaged.write_bytes(_with_short_image_data(buffer.getvalue(), keep))
    with pytest.raises(UserError, match="damaged or incomplete"):
        load_image(damaged)
    with pytest.raises(UserError, match="damaged or incomplete"):
        load_mask(damaged)
    cut = tmp_path / "cut.png"
    cut.write_bytes(buffer.getvalue()[:len(buffer.getvalue()) * 2 // 3])  # no IEND at all
    with pytest.raises(UserError, match="damaged or incomplete"):
        load_image(cut)
