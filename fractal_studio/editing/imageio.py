"""Reading and writing image files safely: every user mistake becomes a UserError, never a traceback.

Loading (`load_image`) always yields uint8 RGB [H, W, 3], whatever Pillow opened:

- EXIF orientation is applied, so the array looks the way photo viewers show the file.
- Palette, greyscale, 1-bit, CMYK, YCbCr and other modes are converted to RGB (CMYK without colour
  management). 16-bit greyscale (modes "I;16*", or "I" holding values 0..65535) is reduced to 8 bits by
  keeping the high byte (v >> 8), the same thing Pillow itself does for 16-bit-per-channel RGB(A) PNGs,
  which it already opens as 8-bit RGB(A). Wider integer or floating-point data is rescaled (see
  `_float_to_u8`). Embedded colour profiles are ignored. Multi-frame files use their first frame.
- Alpha policy: the colour is composited over white for `pixels`, and the pixels whose alpha is below
  128 are reported in `transparent` so the editor can treat them as unknown (to be generated).
  `transparent` is None when the file has no alpha or no pixel is that transparent, so callers only
  have to test for None. Every conversion is described in `notes` so the user can be told.
- Sizes are checked from the header before anything is decoded (Image.open is lazy): at most
  MAX_PIXELS pixels and MAX_SIDE pixels on a side. Pillow's own decompression-bomb error (at twice its
  MAX_IMAGE_PIXELS, above our limit) is reported the same way; its warning (at about 89 megapixels,
  below our limit) is silenced locally because our header check replaces it.
- Truncated files are refused, never filled in: Pillow's LOAD_TRUNCATED_IMAGES stays off, and a JPEG
  whose image data stops before the pixels its header announces (libjpeg fills the rest with flat grey
  and only warns, even when the file still ends properly) is detected by `_check_jpeg_whole` and
  refused with one line.

Saving (`save_png`) is atomic: a temporary file in the target folder is written, fsynced and renamed
over the target, so a failed save (disk full, permissions) never leaves a half-written or damaged file.
Metadata is stored both as one PNG text chunk per key (readable by any tool) and as one JSON iTXt chunk
under "fractal-studio" that `read_png_metadata` reads back exactly.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import io
import json
import os
import re
import struct
import warnings
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import numpy as np
from PIL import ExifTags, Image, ImageChops, ImageOps, UnidentifiedImageError
from PIL.PngImagePlugin import PngInfo

from fractal_studio.errors import TooLarge, UserError
from fractal_studio.files import atomic_write_all
from fractal_studio.untrusted import MAX_IMAGE_FILE_BYTES, check_file, check_path, load_json, read_bytes

MAX_PIXELS = 100_000_000  # about 10000×10000; an RGBA decode of that is already 400 MB
MAX_SIDE = 30000

METADATA_KEY = "fractal-studio"  # the PNG text chunk holding the whole metadata dict as JSON

PathLike = str | os.PathLike

# What Pillow raises while parsing or decoding a damaged file (besides UnidentifiedImageError on open).
_DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, IndexError, struct.error, zlib.error)

_T = TypeVar("_T")


@dataclass(frozen=True)
class LoadedImage:
    """An image file as the editor uses it.

    pixels: uint8 [H, W, 3] RGB, transparent parts composited over white.
    transparent: bool [H, W], True where the source alpha was below 128 (to be generated); None if the
        file has no alpha or no such pixel.
    notes: human-readable descriptions of the conversions done, to show the user.
    source_format: Pillow's format name ("PNG", "JPEG", ...), or "unknown".
    """

    pixels: np.ndarray
    transparent: np.ndarray | None
    notes: tuple[str, ...]
    source_format: str


# ---------------------------------------------------------------------------------------------------
# Loading


def load_image(path: PathLike, *, check_jpeg_whole: bool = True) -> LoadedImage:
    """Open any image Pillow reads as RGB uint8, following the policy in the module docstring. The
    trainer, which decodes every photo many times, passes check_jpeg_whole=False: that check decodes
    a JPEG a second time, and it only refuses files, it never changes the pixels of one it accepts
    (so training and editing still see the same pixels)."""
    p = Path(path)
    notes: list[str] = []
    with _opened(p, check_jpeg_whole) as img:
        source_format = img.format or "unknown"
        if getattr(img, "is_animated", False):
            notes.append("the file has several frames; only the first one is used")
        img = _exif_transposed(img, notes)
    rgb, alpha = _to_rgb8(p, img, notes)
    transparent = None
    if alpha is not None and (alpha < 255).any():
        rgb = _composite(rgb, alpha, background=255)
        mask = alpha < 128
        if mask.any():
            transparent = mask
            notes.append(
                "composited transparent pixels over white; they are marked unknown (to be generated)"
            )
        else:
            notes.append("composited semi-transparent pixels over white")
    return LoadedImage(np.ascontiguousarray(rgb), transparent, tuple(notes), source_format)


def load_mask(path: PathLike, size: tuple[int, int] | None = None) -> np.ndarray:
    """A mask file as bool [H, W], True = generate: white (luminance >= 128) means generate.

    Alpha is composited over black first, so transparent parts of a mask mean "keep".
    size: (width, height) of the image the mask belongs to; a different mask size is a UserError.
    """
    p = Path(path)
    notes: list[str] = []  # conversions of a mask are not worth telling the user about
    with _opened(p) as img:
        img = _exif_transposed(img, notes)
    if size is not None and tuple(img.size) != tuple(size):
        raise UserError(
            f"{p} is {img.width}×{img.height} but the image is {size[0]}×{size[1]}; "
            "the mask must have the image's size."
        )
    rgb, alpha = _to_rgb8(p, img, notes)
    if alpha is not None:
        rgb = _composite(rgb, alpha, background=0)
    # Pillow's own RGB -> L luminance (ITU-R 601), so a mask looks the same as in other programs.
    grey = np.asarray(Image.fromarray(rgb, "RGB").convert("L"))
    return grey >= 128


def load_pins(path: PathLike, size: tuple[int, int]) -> np.ndarray:
    """A pins file (editing/pins.py) as RGBA uint8 [H, W, 4]: its fully opaque pixels (alpha 255)
    are the pins. size: (width, height) of the image; a different size is a UserError, and so is a
    file without transparency (every pixel would be a pin)."""
    p = Path(path)
    notes: list[str] = []
    with _opened(p) as img:
        img = _exif_transposed(img, notes)
    if tuple(img.size) != tuple(size):
        raise UserError(f"{p} is {img.width}×{img.height} but the image is {size[0]}×{size[1]}; "
                        "the pins must have the image's size.")
    rgb, alpha = _to_rgb8(p, img, notes)
    if alpha is None:
        raise UserError(f"{p} has no transparency: the pins are the opaque pixels of an RGBA PNG whose "
                        "other pixels are transparent")
    return np.ascontiguousarray(np.dstack([rgb, alpha]), dtype=np.uint8)


@contextlib.contextmanager
def _opened(p: Path, check_jpeg_whole: bool = True) -> Iterator[Image.Image]:
    """Open and fully decode `p` after checking its header size; every failure becomes a UserError.

    The image is closed when the block ends, so the body must copy what it keeps.
    """
    _check_input_path(p)
    with warnings.catch_warnings():
        # Our header check (MAX_PIXELS) replaces Pillow's lower warning threshold; its hard
        # DecompressionBombError still applies and is translated by _guarded.
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        img = _guarded(p, lambda: Image.open(p))
        try:
            _check_size(p, img.size)  # before load(): the header is all that has been read so far
            _guarded(p, img.load)
            if check_jpeg_whole and img.format in ("JPEG", "MPO"):
                _check_jpeg_whole(p, img)
            yield img
        finally:
            img.close()


# Bytes no JPEG entropy-coded data can end with (no 0xFF, so no marker): see _check_jpeg_whole.
_JPEG_PROBE = bytes(np.random.default_rng(33).integers(0, 0xFF, 4096, dtype=np.uint8))


def _check_jpeg_whole(p: Path, img: Image.Image) -> None:
    """Refuses a JPEG whose image data is shorter than its header's size says. libjpeg decodes such a
    file without an error: where the data runs out (a marker comes early, the end-of-image one too)
    it warns and fills the rest with zeros, which show as flat grey. The test: the file is decoded
    again with bytes that are not a marker put just before its end-of-image marker. A whole scan has
    ended by then, so libjpeg skips them and the pixels are identical; a short scan decodes them as
    more image data, so the pixels differ."""
    data = read_bytes(p, "image", MAX_IMAGE_FILE_BYTES)
    end = _jpeg_end_of_image(data)
    if end is None:  # no end-of-image marker where the structure says: Pillow's own decode judged it
        return
    probe = data[:end] + _JPEG_PROBE + data[end:]
    try:
        with Image.open(io.BytesIO(probe), formats=["JPEG"]) as again:
            again.load()
            same = (again.size == img.size and again.mode == img.mode
                    and ImageChops.difference(again, img).getbbox() is None)
    except _DECODE_ERRORS:  # the probe was read as image data, so the scan was short
        same = False
    if not same:
        w, h = img.size
        raise UserError(f"{p} is damaged or incomplete: its image data ends before the {w}×{h} pixels its "
                        "header announces (the rest would be flat grey); re-export or download it again.")


def _jpeg_end_of_image(data: bytes) -> int | None:
    """Where the end-of-image marker (FF D9) of the JPEG in `data` is, found by walking its segments
    and scans (a scan's data runs until a marker other than a restart); None when the structure
    does not lead to one."""
    pos, size = 2, len(data)
    while pos + 1 < size:
        if data[pos] != 0xFF:
            pos = data.find(b"\xff", pos)  # stray bytes between segments: libjpeg skips them too
            if pos < 0:
                return None
            continue
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker == 0xD9:
            return pos
        if marker == 0x01 or 0xD0 <= marker <= 0xD7:  # markers without a length
            pos += 2
            continue
        if pos + 4 > size:
            return None
        pos += 2 + int.from_bytes(data[pos + 2:pos + 4], "big")
        if marker != 0xDA:
            continue
        while True:  # the scan's entropy-coded data
            pos = data.find(b"\xff", pos)
            if pos < 0 or pos + 1 >= size:
                return None
            following = data[pos + 1]
            if following == 0x00 or 0xD0 <= following <= 0xD7:  # a stuffed 0xFF, a restart marker
                pos += 2
            elif following == 0xFF:
                pos += 1
            else:
                break
    return None


def _check_input_path(p: Path) -> None:
    """Clear messages for the common path mistakes, before Pillow turns them into something obscure."""
    check_path(p, "image")
    if p.is_dir():
        raise UserError(f"{p} is a folder, not an image file; choose a file inside it.")
    if not p.exists():
        raise UserError(f"{p} does not exist; check the file name and folder.")
    check_file(p, "image", MAX_IMAGE_FILE_BYTES)  # a FIFO would block the decoder, /dev/zero never ends
    with contextlib.suppress(OSError):  # unreadable files are reported by the open itself
        if p.stat().st_size == 0:
            raise UserError(f"{p} is empty (0 bytes); it is not an image. Choose another file.")


def _check_size(p: Path, size: tuple[int, int]) -> None:
    w, h = size
    if w < 1 or h < 1:
        raise UserError(f"{p} has no pixels ({w}×{h}); choose another image.")
    if w * h > MAX_PIXELS:
        raise TooLarge(
            f"{p} is {w}×{h} pixels ({_megapixels(w * h)} megapixels); Fractal Studio opens images up "
            f"to {_megapixels(MAX_PIXELS)} megapixels. Downscale it first."
        )
    if max(w, h) > MAX_SIDE:
        raise TooLarge(
            f"{p} is {w}×{h} pixels; Fractal Studio opens images up to {MAX_SIDE} pixels on a side. "
            "Downscale or crop it first."
        )


def _megapixels(pixels: int) -> str:
    mp = pixels / 1e6
    if mp >= 10:
        return f"{mp:.0f}"
    return f"{mp:.1f}" if mp >= 0.1 else f"{mp:.2g}"


def _guarded(p: Path, action: Callable[[], _T]) -> _T:
    """Run a Pillow open/decode step, translating its exceptions into messages for the user."""
    try:
        return action()
    except Image.DecompressionBombError as e:
        raise TooLarge(_bomb_message(p, e)) from e
    except UnidentifiedImageError as e:
        raise UserError(
            f"{p} is not an image Fractal Studio can read, or it is damaged; "
            "use a PNG, JPEG, WebP, BMP or TIFF file."
        ) from e
    except FileNotFoundError as e:
        raise UserError(f"{p} does not exist; check the file name and folder.") from e
    except PermissionError as e:
        raise UserError(f"cannot read {p}: permission denied; check the file's permissions.") from e
    except MemoryError as e:
        raise UserError(f"not enough memory to open {p}; close other programs or downscale it.") from e
    except _DECODE_ERRORS as e:
        raise UserError(
            f"{p} is damaged or incomplete ({_short(e)}); re-export or download it again."
        ) from e


def _bomb_message(p: Path, e: Exception) -> str:
    # Pillow raises before we see the header, so only the pixel count in its message is known.
    match = re.search(r"\((\d+) pixels\)", str(e))
    size = f"{_megapixels(int(match.group(1)))} megapixels" if match else "too large to open safely"
    return (
        f"{p} is {size}; Fractal Studio opens images up to {_megapixels(MAX_PIXELS)} megapixels. "
        "Downscale it first."
    )


def _short(e: BaseException) -> str:
    text = str(e).strip() or type(e).__name__
    return text if len(text) <= 120 else text[:117] + "..."


_ORIENTATION_VERBS = {2: "flipped", 3: "rotated", 4: "flipped", 5: "rotated and flipped",
                      6: "rotated", 7: "rotated and flipped", 8: "rotated"}


def _exif_transposed(img: Image.Image, notes: list[str]) -> Image.Image:
    """A decoded copy of `img`, turned upright per its EXIF orientation (a copy outlives the file)."""
    try:
        orientation = img.getexif().get(ExifTags.Base.Orientation, 1)
        upright = ImageOps.exif_transpose(img)
    except Exception:  # EXIF is optional: a broken block must not make the image unusable
        notes.append("ignored unreadable EXIF data (the orientation may be wrong)")
        return img.copy()
    if orientation in _ORIENTATION_VERBS:
        notes.append(f"{_ORIENTATION_VERBS[orientation]} according to EXIF orientation {orientation}")
    return upright


# Modes converted by Pillow itself, with the name used in the note. RGB and RGBA need no conversion.
_MODE_NAMES = {
    "1": "1-bit black and white",
    "L": "greyscale",
    "LA": "greyscale with alpha",
    "La": "greyscale with alpha",
    "P": "palette colours",
    "PA": "palette colours with alpha",
    "CMYK": "CMYK (without colour management; colours may shift)",
    "YCbCr": "YCbCr",
    "LAB": "Lab",
    "HSV": "HSV",
    "RGBa": None,
    "RGBX": None,
}
_ALPHA_MODES = {"RGBA", "RGBa", "LA", "La", "PA"}


def _to_rgb8(p: Path, img: Image.Image, notes: list[str]) -> tuple[np.ndarray, np.ndarray | None]:
    """uint8 RGB [H, W, 3] and uint8 alpha [H, W] (None when the image has no transparency)."""
    mode = img.mode
    if mode.startswith("I") or mode == "F":
        return _wide_grey_to_rgb8(img, notes)
    has_alpha = mode in _ALPHA_MODES or "transparency" in img.info  # tRNS / GIF transparency
    if mode not in ("RGB", "RGBA"):
        name = _MODE_NAMES.get(mode, mode)
        try:
            img = img.convert("RGBA" if has_alpha else "RGB")
        except ValueError as e:
            raise UserError(
                f"{p} uses the colour mode {mode}, which Fractal Studio cannot convert; "
                "save it as an 8-bit RGB PNG first."
            ) from e
        if name is not None:
            notes.append(f"converted from {name} to RGB")
    elif mode == "RGB" and has_alpha:
        img = img.convert("RGBA")  # a transparent colour key (tRNS) becomes real alpha
    arr = np.asarray(img)
    if arr.shape[2] == 4:
        return arr[:, :, :3], arr[:, :, 3]
    return arr, None


def _wide_grey_to_rgb8(img: Image.Image, notes: list[str]) -> tuple[np.ndarray, np.ndarray | None]:
    """16-bit, 32-bit integer or floating-point greyscale -> 8-bit RGB (see the module docstring)."""
    values = np.asarray(img)
    if img.mode == "F":
        grey = _float_to_u8(values.astype(np.float64), notes)
    elif values.min(initial=0) >= 0 and values.max(initial=0) <= 65535:
        # "I;16*" modes, and "I" as some Pillow versions give for 16-bit PNGs: keep the high byte.
        grey = (values.astype(np.uint32) >> 8).astype(np.uint8)
        notes.append("converted from 16-bit greyscale to 8-bit RGB")
    else:
        grey = _float_to_u8(values.astype(np.float64), notes, kind="32-bit integer greyscale")
    alpha = None
    key = img.info.get("transparency")
    if isinstance(key, int) and not isinstance(key, bool):  # 16-bit PNG tRNS: one grey value is clear
        alpha = np.where(values == key, 0, 255).astype(np.uint8)
    return np.repeat(grey[:, :, None], 3, axis=2), alpha


def _float_to_u8(values: np.ndarray, notes: list[str], kind: str = "floating-point greyscale") -> np.ndarray:
    """0..1 data is scaled by 255 (the usual float-image convention); anything else is stretched from
    its own min..max to 0..255, since there is no standard range to map from."""
    finite = np.isfinite(values)
    values = np.where(finite, values, 0.0)
    lo, hi = float(values.min()), float(values.max())  # never empty: _check_size refused 0×0
    if lo >= 0.0 and hi <= 1.0:
        scaled = values * 255.0
        notes.append(f"converted from {kind} (0..1) to 8-bit RGB")
    else:
        scaled = (values - lo) * (255.0 / (hi - lo)) if hi > lo else np.zeros_like(values)
        notes.append(f"converted from {kind} to 8-bit RGB, stretching its range {lo:g}..{hi:g} to 0..255")
    if not finite.all():
        notes.append("replaced non-finite (NaN/infinite) values by black")
    return np.clip(np.rint(scaled), 0, 255).astype(np.uint8)


def _composite(rgb: np.ndarray, alpha: np.ndarray, background: int) -> np.ndarray:
    """Alpha-composite over a uniform grey level, touching only the pixels that are not opaque
    (keeps the temporary arrays small for large, mostly opaque images)."""
    out = rgb.copy()
    where = alpha < 255
    a = alpha[where].astype(np.uint32)[:, None]
    mixed = (rgb[where].astype(np.uint32) * a + background * (255 - a) + 127) // 255
    out[where] = mixed.astype(np.uint8)
    return out


# ---------------------------------------------------------------------------------------------------
# Saving


def save_png(
    path: PathLike,
    pixels: np.ndarray,
    metadata: dict[str, str] | None = None,
    *,
    source: PathLike | None = None,
    overwrite_source: bool = False,
) -> None:
    """Write uint8 [H, W, 3] RGB (or [H, W] grey) to `path` as PNG, atomically.

    source: the file the image was loaded from; writing over it needs overwrite_source=True.
    Raises ValueError for bad arguments (a programming error) and UserError for file problems.
    """
    save_pngs([(path, pixels, metadata)], source=source, overwrite_source=overwrite_source)


def save_pngs(
    pictures: list[tuple[PathLike, np.ndarray, dict[str, str] | None]],
    *,
    source: PathLike | None = None,
    overwrite_source: bool = False,
) -> None:
    """Writes several PNGs (path, pixels, metadata) all or nothing: if one cannot be written,
    none is, and files that existed before are left as they were."""
    items = []
    for path, pixels, metadata in pictures:
        p = Path(path)
        image = Image.fromarray(_checked_pixels(pixels))
        info = _png_info(metadata or {})
        if source is not None and not overwrite_source and _same_file(p, Path(source)):
            raise UserError(
                f"refusing to overwrite the source image {source}; pass --overwrite or choose another name."
            )
        if p.is_dir():
            raise UserError(f"cannot save {p}: it is a folder; choose a file name.")
        items.append((p, lambda f, image=image, info=info: image.save(f, format="PNG", pnginfo=info)))
    try:
        atomic_write_all(items)
    except OSError as e:
        first = items[0][0]
        what = first if len(items) == 1 else f"the {len(items)} results"
        raise UserError(f"could not save {what}: {_write_reason(e, first)}; nothing was written") from e


def _checked_pixels(pixels: np.ndarray) -> np.ndarray:
    if not isinstance(pixels, np.ndarray) or pixels.dtype != np.uint8:
        raise ValueError(f"pixels must be a uint8 numpy array, got {type(pixels).__name__} "
                         f"{getattr(pixels, 'dtype', '')}")
    if not (pixels.ndim == 2 or (pixels.ndim == 3 and pixels.shape[2] == 3)) or 0 in pixels.shape:
        raise ValueError(f"pixels must have shape [H, W, 3] or [H, W], got {list(pixels.shape)}")
    return np.ascontiguousarray(pixels)


def _png_info(metadata: dict[str, str]) -> PngInfo:
    """One text chunk per key (tEXt, or iTXt when the value is not Latin-1) plus the JSON chunk."""
    info = PngInfo()
    for key, value in metadata.items():
        _check_keyword(key)
        if not isinstance(value, str):
            raise ValueError(f"metadata value for {key!r} must be a str, got {type(value).__name__}")
        info.add_text(key, value)
    if metadata:
        info.add_itxt(METADATA_KEY, json.dumps(metadata, ensure_ascii=False, sort_keys=True))
    return info


def _check_keyword(key: object) -> None:
    """PNG keywords: 1-79 printable Latin-1 characters, no leading, trailing or double spaces."""
    if not isinstance(key, str) or key == METADATA_KEY:
        raise ValueError(f"invalid metadata key {key!r} (must be a str other than {METADATA_KEY!r})")
    printable = all(32 <= ord(c) <= 126 or 161 <= ord(c) <= 255 for c in key)
    if not (1 <= len(key) <= 79 and printable and key == key.strip() and "  " not in key):
        raise ValueError(f"invalid PNG text keyword {key!r}: use 1-79 printable Latin-1 characters")


def _same_file(target: Path, source: Path) -> bool:
    """Whether writing `target` would replace `source` (following links, case-insensitive file systems)."""
    try:
        return target.exists() and source.exists() and os.path.samefile(target, source)
    except OSError:
        return False


def _write_reason(e: OSError, p: Path) -> str:
    hints = {
        errno.ENOSPC: "no space left on device; free some space or save somewhere else",
        errno.EACCES: "permission denied; choose a folder you can write to",
        errno.EPERM: "permission denied; choose a folder you can write to",
        errno.EROFS: "the file system is read-only; save somewhere else",
        errno.ENOENT: f"the folder {p.parent} does not exist; create it or choose another folder",
        errno.ENOTDIR: f"{p.parent} is not a folder; choose another location",
        errno.ENAMETOOLONG: "the file name is too long; choose a shorter name",
    }
    if hasattr(errno, "EDQUOT"):
        hints[errno.EDQUOT] = "disk quota exceeded; free some space or save somewhere else"
    return hints.get(e.errno, (e.strerror or _short(e)).rstrip("."))


# ---------------------------------------------------------------------------------------------------
# Metadata and hashes


def read_png_metadata(path: PathLike) -> dict[str, str]:
    """The dict saved by save_png (exactly), else the file's plain text chunks; {} if it has none."""
    p = Path(path)
    with _opened(p) as img:
        # .text also collects the chunks after the image data; _opened has decoded it already.
        text = {str(k): str(v) for k, v in getattr(img, "text", {}).items()}
    stored = text.get(METADATA_KEY)
    if stored is not None:
        with contextlib.suppress(UserError):  # damaged or hostile JSON (too deep, huge numbers)
            data = load_json(stored, "the record")
            if isinstance(data, dict) and all(isinstance(v, str) for v in data.values()):
                return data
        text.pop(METADATA_KEY)  # damaged JSON: the per-key chunks still hold the values
    return text


def array_sha256(a: np.ndarray) -> str:
    """Hex SHA-256 of an array's dtype, shape and C-order bytes: f"{dtype.str}{shape}" then the data.

    Equal arrays hash equal whatever their memory layout; a different shape or dtype changes the hash.
    """
    a = np.asarray(a)
    if a.dtype.hasobject:
        raise ValueError("array_sha256 cannot hash object arrays")
    digest = hashlib.sha256(f"{a.dtype.str}{tuple(a.shape)}".encode())
    digest.update(np.ascontiguousarray(a).reshape(-1).view(np.uint8))
    return digest.hexdigest()
