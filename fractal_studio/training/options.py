"""Training options: what `fractal-studio train` and `train()` accept, and their checks.

`check_options` sees everything that can be wrong before any data is loaded, so that a bad
command line fails at once with one clear message.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path

from fractal_studio.errors import UserError
from fractal_studio.model.config import PRESETS
from fractal_studio.training.edit_masks import MASK_STYLES

BUILTIN_DATA = ("photos", "fashion-mnist")
STATE_SUFFIX = ".state.pt"
# Config fields that may be overridden from the command line (`--set name=value`).
OVERRIDABLE = {"dropout": float, "label_drop_prob": float, "r_weight": float}
# Ceilings far past any real run, so that a typo (an extra zero, 1e308, nan) is one message now
# rather than a schedule that overflows, a loader that forks thousands of processes or a batch that
# exhausts memory after the data has loaded.
MAX_STEPS = 10**9
MAX_MINUTES = 60 * 24 * 365  # a year of wall time
MAX_BATCH_SIZE = 65_536
MAX_WORKERS = 256  # data loading processes
MAX_EVAL_COUNT = 100_000  # held-out images evaluated (more than any built-in held-out set)


@dataclass
class TrainOptions:
    data: str  # "photos", "fashion-mnist" or a folder of images
    preset: str
    out: str  # the .safetensors to write
    steps: int | None = None  # exactly this many optimizer steps ...
    minutes: float | None = None  # ... or as many as fit in this wall time (estimated after a few steps)
    batch_size: int = 32  # global batch (split over the processes under torchrun)
    lr: float = 1e-3
    weight_decay: float = 0.05
    betas: tuple[float, float] = (0.9, 0.95)
    warmup: float = 0.05  # share of the steps (< 1) or a number of steps (>= 1)
    min_lr_ratio: float = 0.1  # cosine decays to lr * min_lr_ratio
    clip: float = 1.0  # gradient norm clipping (0 = off)
    ema: float = 0.0  # EMA decay (0 = no EMA); the EMA weights are then the saved model
    workers: int = 0
    seed: int = 0
    resume: bool = False
    device: str = "auto"
    checkpoint_minutes: float = 10.0
    eval_every: int = 200  # steps between held-out bits/dim evaluations (0 = only at the end)
    eval_count: int = 256  # held-out images evaluated
    eval_batch: int = 64
    log_every: int = 10
    class_names: tuple[str, ...] | None = None  # replaces the dataset's class names (same count)
    overrides: dict = field(default_factory=dict)  # ModelConfig fields (OVERRIDABLE)
    unconditional: bool = False  # ignore the dataset's classes
    epoch_len: int = 10_000  # items per epoch for the photo crops
    cache_dir: str | None = None  # the data cache (default: sources.data_dir())
    threads: int | None = None  # torch.set_num_threads
    stop_after: int | None = None  # stop (with a checkpoint) after this step, as if interrupted
    calibration_steps: int = 8  # with `minutes`: steps timed to fix the total step count
    masks: str = "paper"  # "paper" (the authors' masks), "edit" (edit-shaped regions) or "mix" (half each)
    init_from: str | None = None  # start from this model file's weights (same architecture), not at random


def state_path(out: str | os.PathLike) -> Path:
    out = Path(out)
    return out.with_name(out.stem + STATE_SUFFIX)


def check_options(opts: TrainOptions) -> None:
    """Raises UserError for anything wrong with the options that can be seen before loading data."""
    if opts.preset not in PRESETS:
        raise UserError(f"unknown preset {opts.preset!r}; choose one of: {', '.join(sorted(PRESETS))}")
    if (opts.steps is None) == (opts.minutes is None):
        raise UserError("give exactly one of --steps and --minutes (how long to train)")
    if opts.steps is not None:
        _check_whole(opts.steps, "--steps", 1, MAX_STEPS)
    if opts.minutes is not None:
        _check_minutes(opts.minutes, "--minutes")
    _check_whole(opts.batch_size, "--batch-size", 1, MAX_BATCH_SIZE)
    if not 0 < opts.lr <= 10 or not math.isfinite(opts.lr):
        raise UserError(f"--lr must be a positive number of at most 10 (e.g. 1e-3), got {opts.lr}")
    if not math.isfinite(opts.weight_decay) or not 0 <= opts.weight_decay <= 10:
        raise UserError(f"--weight-decay must be between 0 and 10, got {opts.weight_decay}")
    if not math.isfinite(opts.warmup) or not 0 <= opts.warmup <= MAX_STEPS:
        raise UserError(f"--warmup must be a share (< 1) or a number of steps (>= 1, at most {MAX_STEPS}), "
                        f"got {opts.warmup}")
    if not math.isfinite(opts.min_lr_ratio) or not 0 <= opts.min_lr_ratio <= 1:
        raise UserError(f"--min-lr-ratio must be between 0 and 1, got {opts.min_lr_ratio}")
    if not math.isfinite(opts.clip):
        raise UserError(f"--clip must be a number, got {opts.clip}")
    for key, value in opts.overrides.items():
        if key in ("dropout", "label_drop_prob") and not (math.isfinite(value) and 0 <= value < 1):
            raise UserError(f"--set {key} must be in [0, 1), got {value:g}")
        if key == "r_weight" and not (math.isfinite(value) and value > 0):
            raise UserError(f"--set r_weight must be a positive number, got {value:g}")
    if not 0 <= opts.ema < 1:
        raise UserError(f"--ema is a decay in [0, 1) (e.g. 0.999; 0 turns it off), got {opts.ema}")
    _check_whole(opts.workers, "--workers", 0, MAX_WORKERS)
    checkpoint = opts.checkpoint_minutes
    if isinstance(checkpoint, bool) or not isinstance(checkpoint, int | float) \
            or not math.isfinite(checkpoint) or checkpoint < 0:
        raise UserError(f"--checkpoint-minutes must be a number of minutes, 0 or more (0 = after every "
                        f"step), got {checkpoint}")
    _check_whole(opts.eval_every, "--eval-every", 0, MAX_STEPS, "(0 = only at the end)")
    _check_whole(opts.eval_count, "--eval-count", 1, MAX_EVAL_COUNT, "(held-out images to evaluate)")
    _check_whole(opts.eval_batch, "the evaluation batch", 1, MAX_BATCH_SIZE)
    _check_whole(opts.log_every, "the log interval", 1, MAX_STEPS)
    _check_whole(opts.epoch_len, "the epoch length", 1, MAX_STEPS)
    _check_whole(opts.calibration_steps, "the calibration steps", 1, MAX_STEPS)
    if opts.stop_after is not None:
        _check_whole(opts.stop_after, "the stopping step", 1, MAX_STEPS)
    if opts.clip < 0:
        raise UserError(f"--clip cannot be negative, got {opts.clip}")
    if not Path(opts.out).name.endswith(".safetensors"):
        raise UserError(f"the output file should end in .safetensors, got {opts.out}")
    check_writable(Path(opts.out))
    if opts.data not in BUILTIN_DATA and not Path(opts.data).is_dir():
        raise UserError(f"--data must be one of {', '.join(BUILTIN_DATA)} or a folder of images; "
                        f"{opts.data} is neither")
    if opts.masks not in MASK_STYLES:
        raise UserError(f"--masks must be one of {', '.join(MASK_STYLES)}, got {opts.masks!r}")
    if opts.init_from is not None:
        if opts.resume:
            raise UserError("--init-from starts a new run; it cannot be combined with --resume")
        if not Path(opts.init_from).is_file():
            raise UserError(f"--init-from: {opts.init_from} is not a file")
    if opts.resume and not state_path(opts.out).is_file():
        raise UserError(f"--resume: there is no training state {state_path(opts.out)} to resume from")
    for key in opts.overrides:
        if key not in OVERRIDABLE:
            raise UserError(f"cannot override {key!r}; overridable: {', '.join(sorted(OVERRIDABLE))}")


def _check_whole(value, option: str, low: int, high: int, note: str = "") -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        shown = f"{value:.6g}" if isinstance(value, float) else str(value)[:40]
        note = f" {note}" if note else ""
        raise UserError(f"{option} must be a whole number between {low} and {high}{note}, got {shown}")


def _check_minutes(value, option: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) \
            or not 0 < value <= MAX_MINUTES:
        raise UserError(f"{option} must be a positive number of minutes, at most {MAX_MINUTES} (a year), "
                        f"got {value}")


def check_writable(out: Path) -> None:
    """The model and its training state can be written next to each other (found now, not after
    the first ten minutes of training)."""
    folder = out.parent
    if not folder.is_dir():
        raise UserError(f"the output folder {folder} does not exist; create it first")
    for path in (out, state_path(out)):
        if path.is_dir():
            raise UserError(f"{path} is a folder; choose another --out")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise UserError(f"cannot write in {folder}: permission denied; choose another --out")
    for path in (out, state_path(out)):
        if path.exists() and not os.access(path, os.W_OK) and not os.access(folder, os.W_OK):
            raise UserError(f"cannot replace {path}: permission denied")
