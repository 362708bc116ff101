"""Installing models in one step: download a checkpoint, convert it, list and remove what is installed.

Installed models live in one folder (`models_dir()`), each as NAME.safetensors. On the way there:
- NAME.pth.part: the download so far. Kept after a dropped connection, a cancel, a full disk or a
  crash, so that the next `get_model` resumes it with an HTTP Range request.
- NAME.pth: the complete checkpoint until it is converted (kept with keep_checkpoint=True, or when
  the conversion fails for a reason other than a damaged file, so that no download is lost).

HTTP is the standard library's (urllib follows redirects); files are streamed in chunks, so memory
stays flat however large the model. No Qt; torch is imported only to convert.

Every download has a budget, so that no server can make it run away: at most MAX_DOWNLOAD_BYTES (a
published model: its catalogue size), at most MAX_RESTARTS answers with the wrong part of the file,
at least MIN_RATE_BYTES_S in every RATE_WINDOW_S seconds (nothing at all in that window is a stall)
and DEADLINE_S in all. A watchdog thread enforces the time limits even while a request is blocked in
connecting or reading headers: it shuts the connection down, and the download stops with one line.
"""

from __future__ import annotations

import difflib
import errno
import http.client
import os
import re
import shutil
import socket
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import weakref
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from fractal_studio import __version__
from fractal_studio.errors import UserError
from fractal_studio.model.published import (
    PUBLISHED,
    SIZE_TOLERANCE,
    PublishedModel,
    format_bytes,
    published_model,
)

ENV_VAR = "FRACTAL_STUDIO_MODELS"
SUFFIX = ".safetensors"
PART_SUFFIX = ".pth.part"
CHECKPOINT_SUFFIX = ".pth"

CHUNK_BYTES = 1 << 20
TIMEOUT_S = 30  # a stalled connection counts as dropped after this long without a byte
RETRIES = 4  # attempts in a row that bring no new byte before giving up
RETRY_WAIT_S = 1.0  # before the first retry; doubled after each attempt that brought nothing
PROGRESS_INTERVAL_S = 0.1
RETRYABLE_HTTP = {408, 429, 500, 502, 503, 504}
# The budget of one download (see the module's docstring); each far from what a real download needs.
MAX_DOWNLOAD_BYTES = 32_000_000_000  # a link not in the catalogue: FractalMAR-H with its Adam state is 14 GB
MAX_RESTARTS = 3  # answers whose range is not the one asked for (each starts the download over)
MIN_RATE_BYTES_S = 4000  # slower than this over a whole window gives up (a 1.6 GB model: 5 days)
RATE_WINDOW_S = 60.0  # the window of the minimum rate; nothing at all for this long is a stall
DEADLINE_S = 24 * 3600.0  # a whole download: FractalMAR-H at 1 MB/s takes an hour
WATCH_INTERVAL_S = 0.1  # how often the watchdog looks
USER_AGENT = f"fractal-studio/{__version__} (Python urllib)"
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
_CONTENT_RANGE = re.compile(r"bytes\s+(\d+)-(\d+)/(\d+|\*)")
_CHECKPOINT_FILE_SUFFIXES = (".pth", ".pt", ".ckpt", ".bin", ".tar")

Cancel = Callable[[], bool] | threading.Event | None


class DownloadCancelled(Exception):
    """The caller cancelled. The partial download is kept: the next get_model resumes it."""


@dataclass(frozen=True)
class DownloadProgress:
    """Where an installation stands. Download: `done` bytes of `total` (None when the server does not
    say). Convert: one event with done=0 and total=None when it starts (it cannot be measured), one
    with done == total == the model file's size when it ends."""

    stage: str  # "download" or "convert"
    done: int
    total: int | None
    speed: float  # bytes per second, averaged over this session's download; 0 while converting
    seconds_left: float | None

    @property
    def fraction(self) -> float | None:
        return self.done / self.total if self.total else None


@dataclass(frozen=True)
class InstalledModel:
    name: str  # what --model calls it
    path: Path
    size: int  # bytes
    published: PublishedModel | None  # its catalogue entry, when it is one of the published models


Progress = Callable[[DownloadProgress], None] | None


# ------------------------------------------------------------------------------------ the folder
def models_dir() -> Path:
    """Where installed models live: $FRACTAL_STUDIO_MODELS, else the user's data folder's models/
    (paths.py; e.g. ~/.local/share/fractal-studio/models on Linux)."""
    override = os.environ.get(ENV_VAR, "").strip()
    if override:
        return Path(override).expanduser()
    from fractal_studio import paths

    return paths.models_dir()


def installed_models(folder: Path | None = None) -> list[InstalledModel]:
    """The installed models, the published ones first in catalogue order, then the others by name."""
    folder = models_dir() if folder is None else Path(folder)
    if not folder.is_dir():
        return []
    order = list(PUBLISHED)
    paths = sorted(folder.glob(f"*{SUFFIX}"),
                   key=lambda p: (order.index(p.stem) if p.stem in order else len(order), p.name))
    return [InstalledModel(p.stem, p, p.stat().st_size, PUBLISHED.get(p.stem)) for p in paths if p.is_file()]


def partial_downloads(folder: Path | None = None) -> dict[str, int]:
    """Name -> bytes already downloaded, for the downloads that a get_model would resume."""
    folder = models_dir() if folder is None else Path(folder)
    if not folder.is_dir():
        return {}
    return {p.name[:-len(PART_SUFFIX)]: p.stat().st_size for p in sorted(folder.glob(f"*{PART_SUFFIX}"))}


def remove_model(name: str, folder: Path | None = None) -> list[Path]:
    """Removes an installed model with its partial download and kept checkpoint; the paths removed."""
    folder = models_dir() if folder is None else Path(folder)
    _check_name(name, "model name")
    paths = [p for p in (folder / f"{name}{SUFFIX}", folder / f"{name}{PART_SUFFIX}",
                         folder / f"{name}{CHECKPOINT_SUFFIX}") if p.is_file()]
    if not paths:
        names = [model.name for model in installed_models(folder)]
        hint = f" (installed: {', '.join(names)})" if names else " (nothing is installed there)"
        raise UserError(f"no model named {name!r} is installed in {folder}{hint}")
    for path in paths:
        try:
            path.unlink()
        except OSError as error:
            raise UserError(f"could not remove {path}: {error.strerror or error}") from None
    return paths


# ----------------------------------------------------------------------------------- installing
@dataclass(frozen=True)
class _Target:
    name: str  # installed as folder/NAME.safetensors
    url: str
    config: str | None  # for convert_checkpoint: a preset name, a config.json, or None (the checkpoint's)
    published: PublishedModel | None  # the catalogue entry whose size the download must have


def get_model(name_or_url: str, config: str | None = None, keep_checkpoint: bool = False,
              folder: Path | None = None, progress: Progress = None, cancel: Cancel = None,
              name: str | None = None) -> Path:
    """Installs a published model (by name) or the checkpoint at an http(s) URL; its .safetensors path.

    An installed model is returned at once. `config` (a preset name or config.json) is needed for a
    checkpoint that does not name its preset; `name` overrides the installed name (by default the
    catalogue name, else the URL's file name, or the --config preset for the authors' generic
    checkpoint-*.pth). `cancel` (a callable or a threading.Event) is checked between chunks: it raises
    DownloadCancelled and keeps the partial download. Every failure is a one-line UserError.
    """
    folder = models_dir() if folder is None else Path(folder)
    target = _target(name_or_url.strip(), config, name)
    destination = folder / f"{target.name}{SUFFIX}"
    if destination.is_file():
        return destination
    _make_folder(folder)
    checkpoint = folder / f"{target.name}{CHECKPOINT_SUFFIX}"
    if not checkpoint.is_file():  # a checkpoint kept from an earlier run is converted as it is
        part = folder / f"{target.name}{PART_SUFFIX}"
        _download(target, part, _Meter(progress), cancel)
        os.replace(part, checkpoint)
    if _is_cancelled(cancel):
        raise DownloadCancelled(f"installing {target.name} was cancelled before converting; "
                                f"the download is kept in {checkpoint}")
    _convert(target, checkpoint, destination, progress)
    if not keep_checkpoint:
        checkpoint.unlink(missing_ok=True)
    return destination


def installed_name(name_or_url: str, config: str | None = None, name: str | None = None) -> str:
    """The name get_model would install under (the same arguments); a UserError for what it refuses."""
    return _target(name_or_url.strip(), config, name).name


def _target(text: str, config: str | None, name: str | None) -> _Target:
    if name is not None:
        _check_name(name, "--name")
    if _is_url(text):
        entry = published_model(text)
        chosen = name or (entry.name if entry else _name_from_url(text, config))
        entry = entry or PUBLISHED.get(chosen)  # a mirror of a published model: the same size applies
        url = text
    elif text in PUBLISHED:
        entry, chosen, url = PUBLISHED[text], name or text, PUBLISHED[text].url
    elif "://" in text:
        raise UserError(f"only http:// and https:// links can be downloaded, got {text}")
    else:
        close = difflib.get_close_matches(text, PUBLISHED, n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise UserError(f"unknown model {text!r}: {hint}give a published model ({', '.join(PUBLISHED)}) "
                        f"or the http(s) link of a checkpoint")
    return _Target(chosen, url, config or (entry.preset if entry else None), entry)


def _is_url(text: str) -> bool:
    return urllib.parse.urlsplit(text).scheme.lower() in ("http", "https")


def _name_from_url(url: str, config: str | None) -> str:
    """The URL's file name without its extension; the authors name every file checkpoint-*.pth, so
    for those the preset given with --config names the model instead."""
    stem = urllib.parse.unquote(Path(urllib.parse.urlsplit(url).path).name)
    for suffix in _CHECKPOINT_FILE_SUFFIXES:
        stem = stem.removesuffix(suffix)
    from fractal_studio.model.config import PRESETS

    if (not stem or stem.startswith("checkpoint")) and config in PRESETS:
        return config
    if not _NAME.fullmatch(stem):
        raise UserError(f"cannot name a model after {url!r}; pass --name NAME (letters, digits, . _ -)")
    return stem


def _check_name(name: str, what: str) -> None:
    if not _NAME.fullmatch(name):
        raise UserError(f"{what} {name!r} is not a model name: use letters, digits, '.', '_' and '-'")


def _make_folder(folder: Path) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise UserError(f"cannot create the models folder {folder}: {error.strerror or error}; "
                        f"set {ENV_VAR} to a folder you can write to") from None


# ------------------------------------------------------------------------------------- download
class _Dropped(Exception):
    """The connection failed or closed early; a retry resumes from what the .part holds."""


class _StartOver(Exception):
    """The .part does not fit what the server sends now; it was removed and the download restarts."""


def _download(target: _Target, part: Path, meter: _Meter, cancel: Cancel) -> None:
    """Fills `part` with the whole file at target.url, resuming what it already holds, within the
    budget (size, restarts, rate, deadline)."""
    budget = _Budget(target)
    try:
        _download_within(target, part, meter, cancel, budget)
    except BaseException:
        if part.is_file() and _size(part) == 0:  # opened, nothing arrived: nothing to resume
            part.unlink(missing_ok=True)
        raise
    finally:
        budget.stop()


def _download_within(target: _Target, part: Path, meter: _Meter, cancel: Cancel, budget: _Budget) -> None:
    fruitless = 0  # attempts in a row that brought no new byte
    restarts = 0
    while True:
        before = _size(part)
        try:
            total = _fetch(target, part, meter, cancel, budget)
        except _StartOver as wrong:
            budget.raise_if_spent(target, part)
            restarts += 1
            if restarts > MAX_RESTARTS:
                raise _wrong_ranges(target, restarts, str(wrong)) from None
            continue
        except _Dropped as drop:
            budget.raise_if_spent(target, part)
            fruitless = 0 if _size(part) > before else fruitless + 1
            if fruitless >= RETRIES:
                raise _gave_up(target, part, str(drop)) from None
            _wait(RETRY_WAIT_S * 2 ** max(fruitless - 1, 0), cancel, part, budget, target)
            continue
        budget.raise_if_spent(target, part)  # a connection the watchdog shut looks like the file's end
        _check_final_size(target, part)
        meter.update(_size(part), total, final=True)
        return


class _Budget:
    """The time and size limits of one download. A watchdog thread checks the deadline and the
    minimum rate every WATCH_INTERVAL_S; when one is spent it records why and shuts down every
    connection the download opened, so that a blocked connect, header or body read returns at once.
    The constants are read when the budget is made (tests lower them)."""

    def __init__(self, target: _Target):
        entry = target.published
        self.cap = (int(entry.download_bytes * (1 + SIZE_TOLERANCE)) + 1 if entry else MAX_DOWNLOAD_BYTES)
        self.min_rate, self.window, self.limit = MIN_RATE_BYTES_S, RATE_WINDOW_S, DEADLINE_S
        self.started = self.window_started = time.monotonic()
        self.received = self.window_received = 0
        self.spent: str | None = None  # why the download must stop
        self._sockets: weakref.WeakSet = weakref.WeakSet()
        self._lock = threading.Lock()
        self._stopped = threading.Event()
        self._opener = urllib.request.build_opener(_TrackedHTTP(self), _TrackedHTTPS(self))
        self._watchdog = threading.Thread(target=self._watch, name="download watchdog", daemon=True)
        self._watchdog.start()

    # what the download calls
    def open(self, request: urllib.request.Request):
        return self._opener.open(request, timeout=TIMEOUT_S)

    def count(self, size: int) -> None:
        self.received += size

    def raise_if_spent(self, target: _Target, part: Path) -> None:
        if self.spent is not None:
            raise UserError(f"the download from {urllib.parse.urlsplit(target.url).netloc} {self.spent}"
                            f"{_kept(part) or '; nothing was kept'}; check the network connection, or try "
                            "again later")

    def stop(self) -> None:
        self._stopped.set()

    # the watchdog
    def track(self, sock) -> None:
        with self._lock:
            self._sockets.add(sock)
        if self.spent is not None:
            self._shut_down()

    def _watch(self) -> None:
        while not self._stopped.wait(WATCH_INTERVAL_S):
            if self.spent is None and self._check(time.monotonic()):
                self._shut_down()

    def _check(self, now: float) -> bool:
        if now - self.started >= self.limit:
            self.spent = f"did not finish within {_duration(self.limit)}, the most one download may take"
            return True
        elapsed = now - self.window_started
        if elapsed < self.window:
            return False
        got = self.received - self.window_received
        if got == 0:
            self.spent = f"stalled: no data arrived for {_duration(self.window)}"
            return True
        if got < self.min_rate * elapsed:
            self.spent = (f"is too slow: {format_bytes(got / elapsed)}/s over the last "
                          f"{_duration(self.window)}, under the {format_bytes(self.min_rate)}/s a download "
                          "needs")
            return True
        self.window_started, self.window_received = now, self.received
        return False

    def _shut_down(self) -> None:
        with self._lock:
            sockets = list(self._sockets)
        for sock in sockets:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:  # closed already
                pass


def _tracked(connection_class, budget: _Budget):
    """`connection_class` whose sockets `budget` can shut down."""
    class Tracked(connection_class):
        def connect(self):
            super().connect()
            budget.track(self.sock)
    return Tracked


class _TrackedHTTP(urllib.request.HTTPHandler):
    def __init__(self, budget: _Budget):
        super().__init__()
        self._budget = budget

    def http_open(self, req):
        return self.do_open(_tracked(http.client.HTTPConnection, self._budget), req)


class _TrackedHTTPS(urllib.request.HTTPSHandler):
    def __init__(self, budget: _Budget):
        super().__init__()
        self._budget = budget

    def https_open(self, req):
        return self.do_open(_tracked(http.client.HTTPSConnection, self._budget), req, context=self._context)


def _duration(seconds: float) -> str:
    if seconds >= 7200:
        return f"{seconds / 3600:.3g} h"
    if seconds >= 120:
        return f"{seconds / 60:.3g} min"
    return f"{seconds:.2g} s" if seconds < 10 else f"{seconds:.0f} s"


def _fetch(target: _Target, part: Path, meter: _Meter, cancel: Cancel, budget: _Budget) -> int | None:
    """One request: appends what the server sends to `part`; the file's total size when known."""
    offset = _size(part)
    headers = {"User-Agent": USER_AGENT, "Accept-Encoding": "identity"}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    try:
        response = budget.open(urllib.request.Request(target.url, headers=headers))
    except urllib.error.HTTPError as error:
        if error.code == 416 and offset:
            return _range_not_satisfiable(error, part, offset)
        if error.code in RETRYABLE_HTTP:
            raise _Dropped(f"HTTP {error.code} {error.reason}") from None
        raise _http_error(target, error, part) from None
    except (OSError, http.client.HTTPException) as error:  # URLError is an OSError
        raise _Dropped(_reason(error)) from None
    with response:
        start, total = _response_range(response, offset, part)
        if response.headers.get_content_type() == "text/html":
            raise _web_page(target, part)
        _check_announced_size(target, total, part, budget)
        _check_space(target, part, start, total)
        _receive(target, response, part, start, total, meter, cancel, budget)
    return total


def _range_not_satisfiable(error: urllib.error.HTTPError, part: Path, offset: int) -> int:
    """416 to `bytes=OFFSET-`: the .part is complete when the file is OFFSET bytes, else stale."""
    total = _content_range(error.headers.get("Content-Range", ""))[2]
    if total == offset:
        return total
    part.unlink(missing_ok=True)
    raise _StartOver(f"asked for the file from byte {offset:,}, it said the file has "
                     + (f"{total:,} bytes" if total is not None else "no such byte"))


def _response_range(response, offset: int, part: Path) -> tuple[int, int | None]:
    """(where the body starts in the file, the file's total size or None)."""
    length = _int_or_none(response.headers.get("Content-Length"))
    if response.status != 206:  # 200 to a Range request: the server sends it all, so start over
        return 0, length
    start, _, total = _content_range(response.headers.get("Content-Range", ""))
    if start != offset:
        part.unlink(missing_ok=True)
        raise _StartOver(f"asked for the file from byte {offset:,}, got it from byte "
                         + (f"{start:,}" if start is not None else "(no valid Content-Range)"))
    if total is None and length is not None:
        total = start + length
    return start, total


def _content_range(header: str) -> tuple[int | None, int | None, int | None]:
    """(first byte, last byte, total) from `bytes A-B/T` or `bytes */T`; None where absent."""
    match = _CONTENT_RANGE.fullmatch(header.strip())
    if match:
        return int(match.group(1)), int(match.group(2)), _int_or_none(match.group(3))
    star = re.fullmatch(r"bytes\s+\*/(\d+)", header.strip())
    return None, None, int(star.group(1)) if star else None


def _int_or_none(text: str | None) -> int | None:
    return int(text) if text is not None and text.strip().isdigit() else None


def _receive(target: _Target, response, part: Path, start: int, total: int | None,
             meter: _Meter, cancel: Cancel, budget: _Budget) -> None:
    """Streams the body into `part` from byte `start` ("wb" when 0: a restart replaces the old part),
    stopping when the budget is spent or the file grows past its cap."""
    meter.begin(start)
    done = start
    try:
        with open(part, "ab" if start else "wb") as out:
            while True:
                if _is_cancelled(cancel):
                    out.close()
                    raise _cancelled(target, part)
                chunk = _read(response)
                if not chunk:
                    break
                if done == 0 and _looks_like_html(chunk):
                    out.close()
                    raise _web_page(target, part)
                if done + len(chunk) > budget.cap:
                    out.close()
                    part.unlink(missing_ok=True)
                    raise _too_large(target, "sent more than", budget)
                _append(out, chunk)
                done += len(chunk)
                budget.count(len(chunk))
                meter.update(done, total)
                if budget.spent is not None:
                    out.flush()  # the message says what is kept: the bytes on disk
                    budget.raise_if_spent(target, part)
    except OSError as error:  # only the file's: _read turns network errors into _Dropped
        raise _write_error(target, part, error) from None
    if total is not None and done < total:
        raise _Dropped(f"the connection closed after {done:,} of {total:,} bytes")


def _read(response) -> bytes:
    try:
        return response.read1(CHUNK_BYTES)  # what has arrived, up to a chunk: progress stays live
    except (OSError, http.client.HTTPException) as error:
        raise _Dropped(_reason(error)) from None


def _append(out, chunk: bytes) -> None:
    out.write(chunk)


def _looks_like_html(first_bytes: bytes) -> bool:
    head = first_bytes.lstrip(b"\xef\xbb\xbf \t\r\n")[:64].lower()
    return head.startswith((b"<!doctype", b"<html", b"<head", b"<?xml"))


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


# ----------------------------------------------------------------------------------- the checks
def _check_announced_size(target: _Target, total: int | None, part: Path, budget: _Budget) -> None:
    if total is not None and target.published and not target.published.expects_size(total):
        part.unlink(missing_ok=True)
        raise _wrong_size(target, total, "offers")
    if total is not None and total > budget.cap:
        part.unlink(missing_ok=True)
        raise _too_large(target, f"offers {total:,} bytes ({format_bytes(total)}), more than", budget)


def _check_final_size(target: _Target, part: Path) -> None:
    size = _size(part)
    if target.published and not target.published.expects_size(size):
        part.unlink(missing_ok=True)
        raise _wrong_size(target, size, "sent")


def _wrong_size(target: _Target, size: int, verb: str) -> UserError:
    entry = target.published
    return UserError(f"{target.url} {verb} {size:,} bytes, but {entry.title} is about "
                     f"{entry.download_bytes:,} bytes ({format_bytes(entry.download_bytes)}): the link "
                     f"may point to another file now; nothing was kept")


def _check_space(target: _Target, part: Path, start: int, total: int | None) -> None:
    """Room for the rest of the download and the converted model (both exist while converting)."""
    if total is None:
        return
    remaining = max(total - start, 0)
    # The converted file holds the weights alone: as large as a weights-only checkpoint, smaller
    # than one that also carries optimizer state.
    converted = target.published.parameters * 4 if target.published else total
    needed = remaining + converted
    free = shutil.disk_usage(part.parent).free
    if free < needed:
        raise UserError(f"not enough free space in {part.parent}: {target.name} needs "
                        f"{format_bytes(needed)} ({format_bytes(remaining)} to download, "
                        f"{format_bytes(converted)} converted) but {format_bytes(free)} is free; free some "
                        f"space or set {ENV_VAR} to a folder on a larger disk"
                        + (f" (the {format_bytes(start)} downloaded are kept)" if start else ""))


# ----------------------------------------------------------------------------------- the errors
def _http_error(target: _Target, error: urllib.error.HTTPError, part: Path) -> UserError:
    kept = _kept(part)
    if error.code == 404:
        return UserError(f"{target.url} was not found (HTTP 404): the link may have moved; "
                         f"pass the model's new link instead{kept}")
    return UserError(f"{target.url} could not be downloaded: the server answered HTTP {error.code} "
                     f"{error.reason}{kept}")


def _too_large(target: _Target, what: str, budget: _Budget) -> UserError:
    return UserError(f"{target.url} {what} the {format_bytes(budget.cap)} a model checkpoint "
                     "can be: it is not a checkpoint (or not the one expected); nothing was kept")


def _wrong_ranges(target: _Target, restarts: int, detail: str) -> UserError:
    host = urllib.parse.urlsplit(target.url).netloc
    return UserError(f"the server at {host} answered {restarts} times with the wrong part of the file "
                     f"({detail}), so the download cannot go on; nothing was kept: try again later, or "
                     "use another link")


def _web_page(target: _Target, part: Path) -> UserError:
    part.unlink(missing_ok=True)
    return UserError(f"{target.url} answered with a web page, not a checkpoint: the link may have expired "
                     f"or need a sign-in in a browser; the partial download was removed")


def _gave_up(target: _Target, part: Path, reason: str) -> UserError:
    host = urllib.parse.urlsplit(target.url).netloc
    if _size(part) == 0:
        return UserError(f"cannot download from {host} ({reason}); check the network connection, "
                         f"or try again later")
    return UserError(f"the download from {host} keeps failing ({reason}){_kept(part)}")


def _write_error(target: _Target, part: Path, error: OSError) -> UserError:
    if error.errno == errno.ENOSPC:
        return UserError(f"the disk is full: {part.parent} has no room for the rest of {target.name}"
                         f"{_kept(part)}; free some space first")
    return UserError(f"could not write {part}: {error.strerror or error}{_kept(part)}")


def _cancelled(target: _Target, part: Path) -> DownloadCancelled:
    return DownloadCancelled(f"the download of {target.name} was cancelled{_kept(part)}")


def _kept(part: Path) -> str:
    size = _size(part)
    if not size:
        return ""
    return f"; the {format_bytes(size)} downloaded are kept in {part}, and the same command resumes them"


def _reason(error: BaseException) -> str:
    reason = getattr(error, "reason", None) or error
    text = str(getattr(reason, "strerror", None) or reason).strip()
    return text.splitlines()[0] if text else type(error).__name__


# ------------------------------------------------------------------------------ waiting, cancel
def _is_cancelled(cancel: Cancel) -> bool:
    if cancel is None:
        return False
    if isinstance(cancel, threading.Event):
        return cancel.is_set()
    return bool(cancel())


def _wait(seconds: float, cancel: Cancel, part: Path, budget: _Budget, target: _Target) -> None:
    """Sleeps before a retry, cancellable, and no longer than the budget allows."""
    end = time.monotonic() + seconds
    while (left := end - time.monotonic()) > 0:
        if _is_cancelled(cancel):
            raise DownloadCancelled(f"the download was cancelled{_kept(part)}")
        budget.raise_if_spent(target, part)
        time.sleep(min(left, 0.1))


class _Meter:
    """Turns bytes received into DownloadProgress events, at most one per PROGRESS_INTERVAL_S."""

    def __init__(self, report: Progress):
        self.report = report
        self.base: int | None = None  # bytes on disk when this session's counting began
        self.started = self.last = 0.0

    def begin(self, start: int) -> None:
        """A response starts at byte `start`: a restart from 0 restarts the speed average too."""
        if self.base is None or start < self.base:
            self.base, self.started = start, time.monotonic()

    def update(self, done: int, total: int | None, final: bool = False) -> None:
        now = time.monotonic()
        if self.report is None or (not final and now - self.last < PROGRESS_INTERVAL_S):
            return
        self.last = now
        elapsed = now - self.started
        speed = (done - (self.base or 0)) / elapsed if self.base is not None and elapsed > 0 else 0.0
        left = (total - done) / speed if total is not None and speed > 0 else None
        self.report(DownloadProgress("download", done, total, speed, 0.0 if final else left))


# -------------------------------------------------------------------------------------- convert
def _convert(target: _Target, checkpoint: Path, destination: Path, progress: Progress) -> None:
    """convert_checkpoint (it writes atomically: a failure leaves no .safetensors). A damaged download
    is removed, to be fetched again; any other failure keeps it, so that no download is lost."""
    from fractal_studio.model.convert import convert_checkpoint  # torch: only now

    if progress is not None:
        progress(DownloadProgress("convert", 0, None, 0.0, None))
    try:
        convert_checkpoint(checkpoint, destination, target.config)
    except UserError as error:
        raise _conversion_error(target, checkpoint, str(error)) from None
    except (RuntimeError, ValueError, KeyError, EOFError, OSError) as error:  # torch on damaged data
        raise _conversion_error(target, checkpoint, f"{checkpoint} could not be read ({_reason(error)})",
                                damaged=True) from None
    if progress is not None:
        size = _size(destination)
        progress(DownloadProgress("convert", size, size, 0.0, 0.0))


def _conversion_error(target: _Target, checkpoint: Path, message: str, damaged: bool = False) -> UserError:
    if damaged or not zipfile.is_zipfile(checkpoint):  # torch writes zip files; this is cut short
        checkpoint.unlink(missing_ok=True)
        return UserError(f"the download of {target.name} is damaged: {message}; it was removed, and the "
                         f"same command downloads it again")
    return UserError(f"{message}; the downloaded checkpoint is kept in {checkpoint}: run the command again "
                     f"(with the right --config) to convert it, or remove the model to delete it")
