"""bf16 or fp32 for sampling on this machine: chosen by timing the model's own work, not by a rule.

Whether bf16 pays on a CPU depends on the CPU and on the model's shape. With AMX tiles a 256-wide
model samples 1.5x faster in bf16; with AVX512-BF16 alone the same model is a little slower in
bf16 (its casts cost more than the faster products save) and only 512-wide and wider ones gain;
without native bf16 it never pays. So `auto` on a CPU with native bf16 times one small edit with
each precision, the first time a model of that shape runs on this machine, and keeps the answer
in the user's cache folder (per CPU, thread count, PyTorch version and model shape). CUDA takes
bf16 where the GPU computes it natively, else fp16 or fp32 (devices.resolve_precision); MPS and CPUs
without native bf16 take fp32.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
import platform
import threading
import time
from pathlib import Path

import numpy as np
import torch

from fractal_studio.devices import PRECISIONS, resolve_precision
from fractal_studio.errors import UserError
from fractal_studio.files import atomic_write
from fractal_studio.untrusted import MAX_JSON_BYTES, load_json_file, printable

log = logging.getLogger(__name__)

CACHE_ENV = "FRACTAL_STUDIO_CACHE"  # overrides the cache folder (tests, portable installs)
BF16_MARGIN = 0.9  # bf16 must be at least this much faster: a tie is not worth its rounding
MAX_PROBE_ROWS = 64  # more rows than this behave alike
PROBE_ROUNDS = 3  # timed runs of each precision, in turns after a warm-up; the fastest counts
_lock = threading.Lock()
_decided: dict[tuple[Path, str], str] = {}  # (cache file, key) -> the precision, in this process


def cpu_bf16_kind() -> str:
    """'amx', 'avx512-bf16' or 'none': what this CPU offers for bf16 matrix products."""
    def supported(name: str) -> bool:
        check = getattr(torch.cpu, name, None)
        return bool(check and check())

    if supported("_is_amx_tile_supported") and supported("_is_avx512_bf16_supported"):
        return "amx"
    if supported("_is_avx512_bf16_supported"):
        return "avx512-bf16"
    return "none"


def sampling_precision(model, device: torch.device, precision: str = "auto", rows: int = 1) -> str:
    """'bf16' or 'fp32' for sampling `model` on `device`; 'auto' measures on CPUs (see above).

    rows: the batch a run samples (candidates, twice that with guidance). bf16 pays with more rows
    per product, so the answer is measured and kept per power of two of it: a 192-wide MAR model
    is 1.26x slower in bf16 for one candidate and 1.4x faster for 8 rows (AMX, one thread)."""
    if precision not in PRECISIONS:
        raise UserError(f"unknown precision {precision!r}; choose one of {', '.join(PRECISIONS)}")
    if precision != "auto" or device.type != "cpu":
        return resolve_precision(device, precision)
    if cpu_bf16_kind() == "none":
        return "fp32"
    rows = min(MAX_PROBE_ROWS, 1 << max(0, int(rows) - 1).bit_length())  # 1, 2, 4, 8, ...
    with _lock:  # two runs starting at once measure once
        key = _cache_key(model.config, rows)
        known = (_cache_file(), key)  # every window of an edit asks: the file is read once
        if known in _decided:
            return _decided[known]
        cache = _read_cache()
        if cache.get(key) not in ("fp32", "bf16"):
            fp32, bf16 = probe_seconds(model, rows)
            cache[key] = "bf16" if bf16 < BF16_MARGIN * fp32 else "fp32"
            cache[key + " seconds"] = {"fp32": round(fp32, 5), "bf16": round(bf16, 5)}
            _write_cache(cache)
        _decided[known] = cache[key]
        return cache[key]


def probe_seconds(model, rows: int = 1) -> tuple[float, float]:
    """(fp32, bf16) seconds of one small edit of `rows` candidates: one top-level patch to fill,
    so every level runs at its real width and sequence length. After a warm-up in each (which also
    prepares the weights for it), the two precisions take turns, so that a machine busy with
    something else slows both alike, and the fastest run of each counts."""
    from fractal_studio.sampling import SampleRequest, sample_all

    config = model.config
    side, patch = config.resolution, config.patch_sizes[0]
    known = np.ones((side, side), bool)
    known[:patch, :patch] = False
    canvas = np.zeros((side, side, 3), np.uint8)
    requests = {name: SampleRequest(canvas=canvas, known=known, precision=name, candidates=rows)
                for name in ("fp32", "bf16")}
    for request in requests.values():
        sample_all(model, request)
    best = {name: float("inf") for name in requests}
    for _ in range(PROBE_ROUNDS):
        for name, request in requests.items():
            start = time.perf_counter()
            sample_all(model, request)
            best[name] = min(best[name], time.perf_counter() - start)
    return best["fp32"], best["bf16"]


# ------------------------------------------------------------------------------------ the cache
def cache_folder() -> Path:
    override = os.environ.get(CACHE_ENV)
    if override:
        return Path(override)
    from fractal_studio import paths

    return paths.cache_dir()


def _cache_key(config, rows: int) -> str:
    shape = [(level.kind, level.size, level.width, level.depth, level.heads) for level in config.levels]
    machine = [cpu_name(), cpu_bf16_kind(), torch.get_num_threads(), torch.__version__]
    text = json.dumps([machine, shape, config.num_conds, config.guiding_pixel, rows])
    return hashlib.sha256(text.encode()).hexdigest()[:24]


@functools.cache
def cpu_name() -> str:
    """The CPU's model name (/proc/cpuinfo on Linux), as speed figures name the machine."""
    try:
        for line in Path("/proc/cpuinfo").read_text(errors="replace").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _cache_file() -> Path:
    return cache_folder() / "precision.json"


def _read_cache() -> dict:
    """The measurements so far; {} when there are none. A damaged cache (not JSON, too deep, too
    large, not a file) is only a cache: it is ignored, with a note, and rewritten after the next
    measurement; it never stops an edit."""
    path = _cache_file()
    if not os.path.lexists(path):
        return {}
    try:
        data = load_json_file(path, "the precision cache", MAX_JSON_BYTES)
    except UserError as error:
        log.warning("%s; measuring again", printable(error))
        return {}
    return data if isinstance(data, dict) else {}


def _write_cache(cache: dict) -> None:
    """Atomically; a cache that cannot be written only means measuring again next time."""
    path = _cache_file()
    text = json.dumps(cache, indent=1, sort_keys=True).encode()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, lambda file: file.write(text))
    except OSError:
        pass
