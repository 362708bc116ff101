"""Fetching the built-in training data into the cache with the ordinary package clients.

Debian packages: `apt-get download` + `dpkg-deb -x`; the scikit-image wheel: `pip download`, then
unzipped (never installed). Only the listed files and each package's licence files are kept
(see `sources` for the lists); each file is placed atomically, so an interrupted fetch leaves no
half-written file, and a failure says what to do.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Iterable
from pathlib import Path

from fractal_studio.files import atomic_write
from fractal_studio.training.sources import (
    FASHION_MNIST_FILES,
    HELDOUT_PHOTOS,
    PACKAGES,
    PHOTO_FILES,
    DataSourceError,
    Log,
    data_dir,
    licence_summary,
    package_dir,
)

logger = logging.getLogger(__name__)


def _entry_path(entry: tuple[str, str], cache_dir: str | os.PathLike | None) -> Path:
    package, path = entry
    return package_dir(package, cache_dir) / path


def _required_files(package: str, entries: Iterable[tuple[str, str]]) -> list[str]:
    wanted = [path for p, path in entries if p == package]
    return wanted + [f for f in PACKAGES[package].licence_files if f not in wanted]


def _missing(package: str, paths: list[str], cache_dir) -> list[str]:
    root = package_dir(package, cache_dir)
    return [p for p in paths if not (root / p).is_file()]


def _run(cmd: list[str], cwd: Path, what: str, hint: str) -> None:
    try:
        proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    except FileNotFoundError as exc:
        raise DataSourceError(f"Cannot {what}: the program {cmd[0]!r} is not installed. {hint}") from exc
    if proc.returncode != 0:
        tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-6:])
        raise DataSourceError(
            f"Cannot {what}: `{' '.join(cmd)}` failed with exit code {proc.returncode}:\n{tail}\n{hint}"
        )


def _fetch_deb(package: str, paths: list[str], dest: Path, work: Path, log: Log) -> None:
    hint = (
        "The built-in data comes from Debian packages: this needs a Debian-based system whose package "
        "lists are current (run `apt-get update`) and that can reach its package mirror."
    )
    os.chmod(work, 0o755)  # apt drops to the _apt user for downloads and needs to enter the folder
    _run(["apt-get", "download", package], work, f"download the Debian package {package}", hint)
    debs = sorted(work.glob("*.deb"))
    if not debs:
        raise DataSourceError(f"`apt-get download {package}` left no .deb file. {hint}")
    log(f"  {debs[0].name}: {debs[0].stat().st_size / 1e6:.1f} MB")
    root = work / "root"
    _run(["dpkg-deb", "-x", str(debs[0]), str(root)], work, f"unpack {debs[0].name}", hint)
    absent = [p for p in paths if not (root / p).is_file()]
    if absent:
        raise DataSourceError(
            f"The Debian package {debs[0].name} does not contain {', '.join(absent)}; this version of "
            "the package differs from the one the file list was written for."
        )
    for p in paths:
        _place(root / p, dest / p)
    _write_stamp(dest, debs[0].name)


def _fetch_wheel(package: str, paths: list[str], dest: Path, work: Path, log: Log) -> None:
    spec = PACKAGES[package]
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--dest", str(work)]
    hint = "This needs pip and access to the Python package index (PyPI)."
    _run([*cmd, *spec.pip_args], work, f"download the {package} wheel", hint)
    wheels = sorted(work.glob("*.whl"))
    if not wheels:
        raise DataSourceError(f"pip downloaded no wheel of {package}. {hint}")
    log(f"  {wheels[0].name}: {wheels[0].stat().st_size / 1e6:.1f} MB")
    with zipfile.ZipFile(wheels[0]) as zf:
        names = set(zf.namelist())
        absent = [p for p in paths if p not in names]
        if absent:
            raise DataSourceError(f"The wheel {wheels[0].name} does not contain {', '.join(absent)}.")
        for p in paths:
            tmp = work / "unzipped" / p
            tmp.parent.mkdir(parents=True, exist_ok=True)
            with zf.open(p) as src, open(tmp, "wb") as dst:
                shutil.copyfileobj(src, dst)
            _place(tmp, dest / p)
    _write_stamp(dest, wheels[0].name)


def _place(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    with open(src, "rb") as data:  # a file in the cache is either complete or absent
        atomic_write(dst, lambda out: shutil.copyfileobj(data, out))


def _write_stamp(dest: Path, fetched: str) -> None:
    (dest / ".fetched.json").write_text(json.dumps({"from": fetched}) + "\n")


def ensure_packages(
    entries: Iterable[tuple[str, str]], cache_dir: str | os.PathLike | None = None, log: Log = logger.info
) -> list[Path]:
    """Make sure every (package, path) entry, and each package's licence files, is in the cache.

    Fetches only the packages that have something missing; returns the entries' paths in order.
    Raises DataSourceError (with what to do) when a download or unpacking fails.
    """
    entries = list(entries)
    root = data_dir(cache_dir)
    for package in dict.fromkeys(p for p, _ in entries):
        if package not in PACKAGES:
            raise ValueError(f"unknown package {package!r}")
        paths = _required_files(package, entries)
        if not _missing(package, paths, cache_dir):
            continue
        log(f"fetching {package} into {package_dir(package, cache_dir)}")
        root.mkdir(parents=True, exist_ok=True)
        dest = package_dir(package, cache_dir)
        dest.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(prefix=f".fetch-{package}-", dir=root))
        try:
            if PACKAGES[package].kind == "deb":
                _fetch_deb(package, paths, dest, work, log)
            else:
                _fetch_wheel(package, paths, dest, work, log)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    return [_entry_path(e, cache_dir) for e in entries]


def ensure_photo_sources(cache_dir: str | os.PathLike | None = None, log: Log = logger.info) -> list[Path]:
    """Fetch what is missing of the "photos" source; returns the paths of all PHOTO_FILES, in order."""
    paths = ensure_packages(PHOTO_FILES, cache_dir, log)
    log(licence_summary(PHOTO_FILES))
    return paths


def photo_files(
    split: str = "train", cache_dir: str | os.PathLike | None = None, download: bool = True,
    log: Log = logger.info,
) -> list[Path]:
    """The paths of the training photos (all but HELDOUT_PHOTOS) or of the held-out ones.

    Fetches missing packages first when `download` (quietly when all is there already); otherwise
    raises DataSourceError when a file is missing.
    """
    if split not in ("train", "heldout"):
        raise ValueError(f"split must be 'train' or 'heldout', not {split!r}")
    held = set(HELDOUT_PHOTOS)
    entries = [e for e in PHOTO_FILES if (e in held) == (split == "heldout")]
    paths = [_entry_path(e, cache_dir) for e in entries]
    if any(not p.is_file() for p in paths):
        if not download:
            raise DataSourceError(
                f"The built-in photos are not in {data_dir(cache_dir)}; fetch them first "
                "(fractal_studio.training.fetch.ensure_photo_sources)."
            )
        paths = ensure_packages(entries, cache_dir, log)
    return paths


def ensure_fashion_mnist(cache_dir: str | os.PathLike | None = None, log: Log = logger.info) -> Path:
    """Fetch Debian's dataset-fashion-mnist if missing; returns the folder holding its 4 idx .gz files."""
    paths = ensure_packages(FASHION_MNIST_FILES, cache_dir, log)
    return paths[0].parent
