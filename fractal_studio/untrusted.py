"""Files and names we do not control: one place that bounds, checks and cleans them.

- Paths a user names (`check_path`): a name is valid UTF-8, no part is over 255 bytes, and it is
  not a loop of symbolic links; checked before any work, so a bad name is one line, not a traceback
  at the end of a run.
- Outputs against inputs (`check_outputs`): every file a command writes is compared with every file
  it reads by file identity (device and inode, symbolic links followed), so an output that is an
  input under another name (a link, a hard link, an installed model's name) is refused.
- Reads (`read_bytes`, `read_text`, `read_gzip`, `load_json_file`, `check_file`): only regular files
  (a FIFO would block, /dev/zero never ends), at most a stated number of bytes, gzip inflated as a
  stream up to a ceiling, JSON no deeper than MAX_JSON_DEPTH and without numbers too long to convert.
- Text from a file shown on the terminal (`printable`): escape sequences and control characters
  removed, so a file cannot retitle or clear the terminal.

Every refusal is a UserError: one line that says which file, what is wrong and what to do.
"""

from __future__ import annotations

import errno
import json
import os
import re
import stat
import zipfile
import zlib
from collections.abc import Iterable
from pathlib import Path

from fractal_studio.errors import UserError

# Caps on the files we read, each far above the largest real one (named in the comment).
MAX_JSON_BYTES = 16 << 20  # configs, the precision cache, the autosave's settings: a few KB
MAX_CLASS_NAMES_BYTES = 16 << 20  # a class-names file: ImageNet's 1000 names are 30 KB
MAX_SAFETENSORS_HEADER_BYTES = 100_000_000  # a model's header: FractalMAR-H's is about 100 KB
MAX_IMAGE_FILE_BYTES = 4 << 30  # an image file: a 100-megapixel 16-bit TIFF is 800 MB
MAX_AUTOSAVE_BYTES = 4 << 30  # the autosave's image, mask and undo history, inflated
MAX_GZIP_BYTES = 1 << 30  # compressed training data: Fashion-MNIST's largest file is 26 MB
MAX_GZIP_INFLATED_BYTES = 1 << 30  # the same inflated: Fashion-MNIST's largest is 47 MB
MAX_TORCH_INFLATED_BYTES = 256 << 30  # a checkpoint or training state: FractalMAR-H with Adam is 14 GB
MAX_JSON_DEPTH = 64  # nesting of JSON objects and lists: ours nest 4 deep
NAME_MAX = 255  # bytes in one part of a path (Linux, macOS, Windows)
PATH_MAX = 4096  # bytes in a whole path (Linux)


def _size(count: int) -> str:
    for unit, shift in (("GiB", 30), ("MiB", 20), ("KiB", 10)):
        if count >= 1 << shift:
            return f"{count / (1 << shift):.3g} {unit}"
    return f"{count} bytes"


# ------------------------------------------------------------------------------- terminal text
_ESCAPE_SEQUENCE = re.compile(r"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)?|[@-Z\\-_]?)"
                              r"|\x9b[0-?]*[ -/]*[@-~]|\x9d[^\x07\x1b\x9c]*(?:\x07|\x9c)?")
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069\ud800-\udfff]")


def printable(text: object) -> str:
    """`text` safe to print: escape sequences removed, every other control character (newlines,
    bidirectional overrides, undecodable bytes of a file name) shown as an escape such as \\x07."""
    text = _ESCAPE_SEQUENCE.sub("", str(text))
    return _CONTROL.sub(lambda m: ascii(m.group())[1:-1], text)


# ------------------------------------------------------------------------------------- paths
def check_path(path: str | os.PathLike, what: str) -> Path:
    """`path` as a Path after refusing names the file system or the PNG record cannot take: not
    UTF-8, a part over NAME_MAX bytes, the whole over PATH_MAX bytes, a loop of symbolic links."""
    text = os.fspath(path)
    shown = printable(text)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise UserError(f"{what} {shown}: the name is not valid UTF-8; rename the file (or its "
                        "folder) with plain characters") from None
    raw = os.fsencode(text)
    if any(len(part) > NAME_MAX for part in raw.split(b"/")):
        raise UserError(f"{what} {shown[:60]}…: a part of the name is over {NAME_MAX} bytes, more than "
                        "file systems allow; choose a shorter name")
    if len(raw) > PATH_MAX:
        raise UserError(f"{what} {shown[:60]}…: the path is over {PATH_MAX} bytes; choose a shorter one")
    try:
        os.stat(text)
    except OSError as error:
        if error.errno == errno.ELOOP:
            raise UserError(f"{what} {shown}: a loop of symbolic links (a link that leads back to "
                            "itself); fix or remove the link") from None
        if error.errno == errno.ENAMETOOLONG:
            raise UserError(f"{what} {shown}: the name is too long for this file system; choose a "
                            "shorter one") from None
    return Path(text)


def _identity(path: str | os.PathLike) -> tuple[int, int] | None:
    """(device, inode) of the file at `path`, links followed; None if there is none."""
    try:
        info = os.stat(path)
    except (OSError, ValueError):
        return None
    return info.st_dev, info.st_ino


def check_outputs(outputs: Iterable[tuple[str, str | os.PathLike]],
                  inputs: Iterable[tuple[str, str | os.PathLike | None]],
                  *, source: str | os.PathLike | None = None, overwrite: bool = False) -> None:
    """Refuses, before any work, an output that is one of the inputs (by file identity: a symbolic
    or hard link to an input is that input) or another output. `source` is the image an edit reads:
    the one input that --overwrite may replace; every other input is never written."""
    inputs = [(what, value) for what, value in inputs if value is not None]
    if source is not None:
        inputs.append(("source image", source))
    known: dict[tuple[int, int], str] = {}
    for what, value in inputs:
        identity = _identity(value)
        if identity is not None:
            known.setdefault(identity, what)
    written: dict[tuple[int, int] | str, str] = {}
    for option, out in outputs:
        out = check_path(out, option)
        identity = _identity(out)
        if identity is not None and identity in known:
            what = known[identity]
            if what == "source image" and overwrite:
                continue
            if what == "source image":
                raise UserError(f"refusing to overwrite the source image {printable(source)} ({option} "
                                f"{printable(out)}); pass --overwrite or choose another {option}")
            raise UserError(f"refusing to overwrite the {what} file this command reads ({option} "
                            f"{printable(out)} is the same file); choose another {option}")
        key = identity if identity is not None else os.path.abspath(out)
        if key in written:
            raise UserError(f"{option} {printable(out)} is also {written[key]}: each output needs a file "
                            "of its own")
        written[key] = option


# ------------------------------------------------------------------------------------- reads
def check_file(path: str | os.PathLike, what: str, cap: int) -> os.stat_result:
    """The stat of `path` after refusing what is not a regular file or is over `cap` bytes (for
    files a library opens itself: safetensors, torch.load, np.load)."""
    p = check_path(path, what)
    try:
        info = os.stat(p)
    except FileNotFoundError:
        raise UserError(f"{what} {printable(p)} does not exist; check the name") from None
    except OSError as error:
        raise UserError(f"cannot read {what} {printable(p)}: {error.strerror or error}") from None
    _check_stat(info, p, what, cap)
    return info


def _check_stat(info: os.stat_result, p: Path, what: str, cap: int) -> None:
    if stat.S_ISDIR(info.st_mode):
        raise UserError(f"{what} {printable(p)} is a folder; give a file")
    if not stat.S_ISREG(info.st_mode):
        raise UserError(f"{what} {printable(p)} is not a regular file (a device, pipe or socket); "
                        "give a file")
    if info.st_size > cap:
        raise UserError(f"{what} {printable(p)} is {_size(info.st_size)}, more than the {_size(cap)} "
                        "such a file can be; it is not the right file")


def read_bytes(path: str | os.PathLike, what: str, cap: int) -> bytes:
    """The bytes of a regular file of at most `cap` bytes. The file is opened without blocking and
    checked on the open descriptor, so a FIFO swapped in after a check cannot hang the read."""
    p = check_path(path, what)
    try:
        fd = os.open(p, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    except FileNotFoundError:
        raise UserError(f"{what} {printable(p)} does not exist; check the name") from None
    except OSError as error:
        raise UserError(f"cannot read {what} {printable(p)}: {error.strerror or error}") from None
    with os.fdopen(fd, "rb") as file:
        _check_stat(os.fstat(fd), p, what, cap)
        try:
            data = file.read(cap + 1)
        except OSError as error:
            raise UserError(f"cannot read {what} {printable(p)}: {error.strerror or error}") from None
    if len(data) > cap:  # grew since the check
        raise UserError(f"{what} {printable(p)} is more than the {_size(cap)} such a file can be")
    return data


def read_text(path: str | os.PathLike, what: str, cap: int) -> str:
    data = read_bytes(path, what, cap)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise UserError(f"{what} {printable(path)} is not a UTF-8 text file") from None


def read_gzip(path: str | os.PathLike, what: str, cap: int | None = None,
              inflated_cap: int | None = None, hint: str = "download it again") -> bytes:
    """A gzip file's content, inflated as a stream that stops at `inflated_cap` bytes (a small file
    can claim gigabytes); by default MAX_GZIP_BYTES and MAX_GZIP_INFLATED_BYTES. `hint` is what a
    message about a damaged file says to do."""
    cap = MAX_GZIP_BYTES if cap is None else cap
    inflated_cap = MAX_GZIP_INFLATED_BYTES if inflated_cap is None else inflated_cap
    data = read_bytes(path, what, cap)
    out = bytearray()
    while data:
        stream = zlib.decompressobj(wbits=31)  # one gzip member; concatenated members follow
        chunk = data
        try:
            while chunk and not stream.eof:
                out += stream.decompress(chunk, inflated_cap + 1 - len(out))
                if len(out) > inflated_cap:
                    raise UserError(f"{what} {printable(path)} inflates to more than {_size(inflated_cap)}; "
                                    f"it is not the right file: {hint}")
                chunk = stream.unconsumed_tail
        except zlib.error as error:
            raise UserError(f"{what} {printable(path)} is not a valid gzip file ({error}); "
                            f"{hint}") from None
        if not stream.eof:
            raise UserError(f"{what} {printable(path)} is truncated; {hint}")
        data = stream.unused_data
    return bytes(out)


def check_torch_file(path: str | os.PathLike, what: str,
                     inflated_cap: int = MAX_TORCH_INFLATED_BYTES) -> None:
    """A torch.save file (a zip archive) that cannot inflate: every entry stored, not compressed, as
    torch.save writes them, so the archive holds no more than its own size; at most `inflated_cap`."""
    info = check_file(path, what, inflated_cap)
    try:
        with zipfile.ZipFile(path) as archive:
            entries = archive.infolist()
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as error:
        raise UserError(f"{printable(path)} is not a readable PyTorch {what} (not written by "
                        f"torch.save: {error})") from None
    if any(entry.compress_type != zipfile.ZIP_STORED for entry in entries):
        raise UserError(f"{what} {printable(path)} holds compressed entries, which torch.save never "
                        "writes; it was altered (refused: it could inflate without bound)")
    if sum(entry.file_size for entry in entries) > max(info.st_size, 0):
        raise UserError(f"{what} {printable(path)} is damaged: its entries claim more bytes than the "
                        "file has")


def check_npz(path: str | os.PathLike, what: str, cap: int) -> None:
    """An .npz archive whose arrays, inflated, hold at most `cap` bytes in all: each entry's size as
    its array header states it (np.load allocates that before reading), no object arrays."""
    import numpy as np

    check_file(path, what, cap)
    total = 0
    try:
        with zipfile.ZipFile(path) as archive:
            for entry in archive.infolist():
                total += entry.file_size
                if total > cap:
                    raise UserError(f"{what} {printable(path)} inflates to more than {_size(cap)}")
                with archive.open(entry) as member:
                    version = np.lib.format.read_magic(member)
                    read_header = {(1, 0): np.lib.format.read_array_header_1_0,
                                   (2, 0): np.lib.format.read_array_header_2_0}.get(version)
                    if read_header is None:
                        raise ValueError(f"array format version {version} is not one numpy writes here")
                    shape, _, dtype = read_header(member)
                if dtype.hasobject:
                    raise UserError(f"{what} {printable(path)} holds objects, not arrays")
                count = 1
                for side in shape:
                    count *= side
                if count * dtype.itemsize > entry.file_size:
                    raise UserError(f"{what} {printable(path)} is damaged: an array claims more bytes "
                                    "than it holds")
    except (zipfile.BadZipFile, OSError, ValueError, EOFError, TypeError) as error:
        raise UserError(f"{what} {printable(path)} is not a readable .npz archive ({error})") from None


# -------------------------------------------------------------------------------------- JSON
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"', re.DOTALL)
_BRACKET = re.compile(r"[\[\]{}]")


def json_depth(text: str) -> int:
    """How deeply JSON objects and lists nest in `text` (brackets inside strings do not count)."""
    depth = deepest = 0
    for match in _BRACKET.finditer(_STRING.sub('""', text)):
        if match.group() in "[{":
            depth += 1
            deepest = max(deepest, depth)
        else:
            depth -= 1
    return deepest


def load_json(text: str | bytes, what: str, max_depth: int = MAX_JSON_DEPTH):
    """json.loads with the nesting checked first (deep nesting would exhaust the recursion limit) and
    a number too long to convert reported as a damaged file; every problem is a UserError."""
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError:
            raise UserError(f"{what} is not UTF-8 JSON text") from None
    if json_depth(text) > max_depth:
        raise UserError(f"{what} nests its JSON more than {max_depth} levels deep; it is damaged or not "
                        "the right file")
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise UserError(f"{what} is not valid JSON ({error.msg}, line {error.lineno})") from None
    except ValueError as error:  # an integer past sys.get_int_max_str_digits() (4300 digits)
        digits = re.search(r"has (\d+) digits", str(error))
        raise UserError(f"{what} is damaged: it holds a number too long to read"
                        + (f" ({digits.group(1)} digits)" if digits else "")) from None
    except RecursionError:  # deeper than the scan saw (it cannot be): the same answer
        raise UserError(f"{what} nests its JSON too deeply; it is damaged or not the right file") from None


def load_json_file(path: str | os.PathLike, what: str, cap: int = MAX_JSON_BYTES):
    return load_json(read_bytes(path, what, cap), f"{what} {printable(path)}")
