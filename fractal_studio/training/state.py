"""The training state beyond the weights, and its checkpoint: what makes `--resume` exact.

A checkpoint writes the model file (the EMA weights when EMA is on) and, atomically, a sidecar
`<out>.state.pt` with the raw weights, optimizer, EMA, RNG states, step and history.
"""

from __future__ import annotations

import errno
import random
from copy import deepcopy
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn

from fractal_studio.errors import UserError
from fractal_studio.files import atomic_write_all
from fractal_studio.model.fractal import FractalModel
from fractal_studio.model.weights import model_writer
from fractal_studio.training.options import state_path
from fractal_studio.untrusted import check_torch_file, printable


class EMA:
    """Exponential moving average of the parameters (decay ramped up early: (1 + t) / (10 + t))."""

    def __init__(self, model: nn.Module, decay: float):
        self.decay = decay
        self.shadow = {k: v.detach().clone() for k, v in model.state_dict().items()}

    @torch.no_grad()
    def update(self, model: nn.Module, step: int) -> None:
        d = min(self.decay, (1 + step) / (10 + step))
        for k, v in model.state_dict().items():
            if v.dtype.is_floating_point:
                self.shadow[k].mul_(d).add_(v.detach(), alpha=1 - d)
            else:
                self.shadow[k].copy_(v)


def rng_state(device: torch.device) -> dict:
    """The RNG states as tensors and plain Python values only, so that the state file loads with
    `torch.load(weights_only=True)` (no pickled objects: a state file cannot run code)."""
    name, keys, position, has_gauss, cached = np.random.get_state()
    state = {"torch": torch.get_rng_state(),
             "numpy": [name, torch.from_numpy(keys.astype(np.int64)), int(position), int(has_gauss),
                       float(cached)],
             "python": random.getstate()}
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def set_rng_state(state: dict, device: torch.device) -> None:
    torch.set_rng_state(state["torch"])
    name, keys, position, has_gauss, cached = state["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), position, has_gauss, cached))
    random.setstate(state["python"])
    if device.type == "cuda" and "cuda" in state:
        torch.cuda.set_rng_state(state["cuda"], device)


def seed_all(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def weights_model(model: FractalModel, ema: EMA | None) -> FractalModel:
    if ema is None:
        return model
    copy = deepcopy(model)  # (not a new FractalModel: its initialisation would use the global RNG)
    copy.load_state_dict(ema.shadow)
    return copy


def save_checkpoint(opts, model, ema, optimizer, step, epoch, batch_in_epoch, total_steps, history,
                    device, elapsed) -> None:
    """Writes the model file and its state together, all or nothing: on a full disk (or any other
    write failure) both files stay as the last checkpoint left them, no temporary file remains, and
    the UserError says so."""
    out = Path(opts.out)
    broken = nonfinite_weights(model, ema)
    if broken:  # a diverged run never replaces a good checkpoint
        shown = ", ".join(printable(name) for name in broken[:3]) + (" …" if len(broken) > 3 else "")
        raise UserError(f"training diverged: the weights at step {step} hold NaN or infinite values "
                        f"({len(broken)} tensors: {shown}), so no checkpoint was written; {_previous(out)}: "
                        f"lower --lr (it was {opts.lr:g}), then --resume or start again")
    out.parent.mkdir(parents=True, exist_ok=True)
    state = {
        "step": step, "epoch": epoch, "batch_in_epoch": batch_in_epoch, "total_steps": total_steps,
        "model": model.state_dict(), "optimizer": optimizer.state_dict(),
        "ema": ema.shadow if ema is not None else None, "rng": rng_state(device),
        "history": history, "elapsed": elapsed,
        "options": {k: v for k, v in asdict(opts).items() if k not in ("resume", "stop_after")},
        "config": model.config.to_json(), "class_names": list(model.config.class_names),
    }
    try:
        atomic_write_all([(out, model_writer(weights_model(model, ema))),
                          (state_path(out), lambda f: _torch_save(state, f))])
    except OSError as error:
        raise checkpoint_error(out, step, error) from None


def _torch_save(state: dict, file) -> None:
    """torch.save, with a failed write raised as the OSError it was: torch reports it as a
    RuntimeError ("file write failed") and loses the reason (a full disk)."""
    recorded: list[OSError] = []

    class Recording:
        def write(self, data):
            try:
                return file.write(data)
            except OSError as error:
                recorded.append(error)
                raise

        def flush(self):
            return file.flush()

    try:
        torch.save(state, Recording())
    except RuntimeError as error:
        if recorded:
            raise recorded[0] from None
        raise OSError(errno.EIO, f"writing the training state failed ({error})") from None


def nonfinite_weights(model: nn.Module, ema: EMA | None = None) -> list[str]:
    """The names of the model's (and the EMA's) floating-point tensors that hold NaN or infinity."""
    tensors = list(model.state_dict().items()) + ([] if ema is None else [(f"EMA {name}", value) for
                                                                          name, value in ema.shadow.items()])
    return [name for name, value in tensors
            if value.dtype.is_floating_point and not bool(torch.isfinite(value).all())]


def _previous(out: Path) -> str:
    """What a failed checkpoint left of `out`: the last one, or nothing."""
    if out.exists() or state_path(out).exists():
        names = f"{printable(out.name)} and {printable(state_path(out).name)}"
        return f"{names} are as the last checkpoint left them"
    return "nothing was written"


def checkpoint_error(out: Path, step: int, error: OSError) -> UserError:
    previous = ("the previous checkpoint is intact" if out.exists() or state_path(out).exists()
                else "nothing was written")
    if error.errno == errno.ENOSPC:
        reason = f"the disk is full ({out.parent} has no room for it)"
    else:
        reason = error.strerror or str(error)
    return UserError(f"could not write the checkpoint at step {step} ({printable(out)} and "
                     f"{state_path(out).name}): {reason}; {previous} (no partial file is left): free "
                     "some space or choose another --out, then --resume")


def load_state(path: Path) -> dict:
    """A training state written by `save_checkpoint`, loaded without unpickling any object."""
    import pickle

    check_torch_file(path, "training state (--resume)")  # bounded: no archive that inflates
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        raise UserError(f"--resume: {path} holds objects other than tensors and plain values, so it is "
                        "not loaded (a file like that could run code); it was not written by this "
                        "version of fractal-studio, or it was altered") from None
    except (RuntimeError, EOFError, OSError, ValueError) as error:
        raise UserError(f"--resume: cannot read the training state {path}: {error}") from None


# ------------------------------------------------------------------------- checking a state
# What save_checkpoint writes, key by key: the types each value may have.
_STATE_FIELDS = {"step": int, "epoch": int, "batch_in_epoch": int, "total_steps": (int, type(None)),
                 "model": dict, "optimizer": dict, "ema": (dict, type(None)), "rng": dict, "history": list,
                 "config": str}


def _kind(value) -> str:
    return "nothing" if value is None else f"a {type(value).__name__}"


def check_state(state, path) -> None:
    """Refuses, before anything is built, a training state whose structure is not what
    save_checkpoint writes: a missing key, a value of the wrong type, a negative count, history
    that is not a list of records, RNG states that cannot be restored. One line naming the first
    problem (a state of another model is refused next, by its configuration)."""
    def refuse(problem: str) -> UserError:
        return UserError(f"--resume: the training state {printable(path)} {problem}; it was not written by "
                         "this version of fractal-studio, or it is damaged (start without --resume, or "
                         "restore the state the interrupted run wrote)")

    if not isinstance(state, dict):
        raise refuse(f"is {_kind(state)}, not a table of the run's state")
    missing = [key for key in _STATE_FIELDS if key not in state]
    if missing:
        raise refuse(f"has no {', '.join(missing)}")
    for key, kinds in _STATE_FIELDS.items():
        value = state[key]
        kinds = kinds if isinstance(kinds, tuple) else (kinds,)
        if isinstance(value, bool) or not isinstance(value, kinds):
            wanted = " or ".join("nothing" if k is type(None) else k.__name__ for k in kinds)
            raise refuse(f"has {key} as {_kind(value)}, not {wanted}")
    for key in ("step", "epoch", "batch_in_epoch", "total_steps"):
        if state[key] is not None and state[key] < 0:
            raise refuse(f"has a negative {key} ({state[key]})")
    if state["total_steps"] == 0:
        raise refuse("has total_steps 0")
    elapsed = state.get("elapsed", 0.0)
    if isinstance(elapsed, bool) or not isinstance(elapsed, (int, float)) or not 0 <= elapsed < 1e12:
        raise refuse(f"has elapsed as {printable(repr(elapsed))[:40]}, not a number of seconds")
    for record in state["history"]:  # {"step", "loss" or "heldout_bpd", "elapsed"}
        if (not isinstance(record, dict) or not isinstance(record.get("step"), int)
                or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in record.values())):
            raise refuse("has a history entry that is not a record of a step and its numbers")
    for key in ("model", "ema"):
        tensors = state[key] or {}
        if not all(isinstance(name, str) and isinstance(value, torch.Tensor)
                   for name, value in tensors.items()):
            raise refuse(f"has {key} weights that are not a table of named tensors")
    optimizer = state["optimizer"]
    if not isinstance(optimizer.get("state"), dict) or not isinstance(optimizer.get("param_groups"), list):
        raise refuse("has an optimizer state without its state and param_groups")
    _check_rng(state["rng"], refuse)


def _check_rng(rng: dict, refuse) -> None:
    """Restores the saved RNG states and puts the current ones back: what cannot be restored now
    would otherwise fail after the model and data were built."""
    current = rng_state(torch.device("cpu"))
    try:
        set_rng_state(rng, torch.device("cpu"))
    except (KeyError, TypeError, ValueError, RuntimeError, IndexError, AttributeError):
        raise refuse("has random-number generator states that cannot be restored") from None
    finally:
        set_rng_state(current, torch.device("cpu"))


def _misfit(path, model: nn.Module):
    def refuse(problem: str) -> UserError:
        return UserError(f"--resume: the training state {printable(path)} does not fit the model "
                         f"{model.config.name}: {problem}; it is damaged or was altered (start without "
                         "--resume)")
    return refuse


def check_state_weights(state: dict, path, model: nn.Module) -> None:
    """Refuses weights or EMA weights whose names, shapes or types are not the model's
    (load_state_dict would stop with a traceback)."""
    refuse = _misfit(path, model)
    expected = model.state_dict()
    for key in ("model", "ema"):
        tensors = state[key]
        if tensors is None:
            continue
        missing = sorted(expected.keys() - tensors.keys())
        unexpected = sorted(tensors.keys() - expected.keys())
        if missing or unexpected:
            parts = ([f"{len(missing)} missing (e.g. {_name(missing[0])})"] if missing else []) + (
                [f"{len(unexpected)} unexpected (e.g. {_name(unexpected[0])})"] if unexpected else [])
            raise refuse(f"its {key} weights have " + " and ".join(parts))
        for name, value in tensors.items():
            want = expected[name]
            if tuple(value.shape) != tuple(want.shape) or value.dtype != want.dtype:
                raise refuse(f"its {key} weight {_name(name)} is {_tensor(value)}, not {_tensor(want)}")


def check_optimizer_state(state: dict, path, model: nn.Module, optimizer: torch.optim.Optimizer) -> None:
    """Refuses optimizer moments for other parameters or of other shapes (the first step would
    stop with a traceback)."""
    refuse = _misfit(path, model)
    saved = state["optimizer"]
    groups = optimizer.state_dict()["param_groups"]
    saved_groups = saved["param_groups"]
    if (len(saved_groups) != len(groups)
            or not all(isinstance(g, dict) and isinstance(g.get("params"), list) for g in saved_groups)
            or [len(g["params"]) for g in saved_groups] != [len(g["params"]) for g in groups]):
        raise refuse("its optimizer state is for another set of parameters")
    params = [p for group in optimizer.param_groups for p in group["params"]]
    ids = [i for group in saved_groups for i in group["params"]]
    for index, moments in saved["state"].items():
        if index not in ids or not isinstance(moments, dict):
            raise refuse(f"its optimizer state holds an entry {printable(repr(index))[:20]} of no parameter")
        param = params[ids.index(index)]
        for name, value in moments.items():
            if not isinstance(value, torch.Tensor):
                raise refuse(f"its optimizer's {printable(name)[:20]} is {_kind(value)}, not a tensor")
            if name != "step" and (tuple(value.shape) != tuple(param.shape)
                                   or not value.dtype.is_floating_point):
                raise refuse(f"its optimizer's {printable(name)[:20]} for a {list(param.shape)} parameter is "
                             f"{_tensor(value)}")


def _name(name: str) -> str:
    name = printable(name)
    return name if len(name) <= 80 else name[:79] + "…"


def _tensor(value: torch.Tensor) -> str:
    return f"{list(value.shape)} {str(value.dtype).removeprefix('torch.')}"


def start_from_weights(model: FractalModel, path: str) -> None:
    """Loads a model file's weights into `model` (fine-tuning); the architectures must match."""
    from fractal_studio.model.weights import load_model

    source = load_model(path, device="cpu")
    mine, theirs = model.state_dict(), source.state_dict()
    differing = sorted(k for k in mine.keys() | theirs.keys()
                       if k not in mine or k not in theirs or mine[k].shape != theirs[k].shape)
    if differing:
        raise UserError(f"--init-from: {path} is not a {model.config.name} model with this data's classes "
                        f"({len(differing)} weights differ, e.g. {differing[0]}); pick the same --preset "
                        "and --data it was trained with")
    model.load_state_dict(theirs)
