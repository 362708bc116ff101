"""The training state beyond the weights, and its checkpoint: what makes `--resume` exact.

A checkpoint writes the model file (the EMA weights when EMA is on) and, atomically, a sidecar
`<out>.state.pt` with the raw weights, optimizer, EMA, RNG states, step and history.
"""

from __future__ import annotations

import random
from copy import deepcopy
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn

from fractal_studio.errors import UserError
from fractal_studio.files import atomic_write
from fractal_studio.model.fractal import FractalModel
from fractal_studio.model.weights import save_model
from fractal_studio.training.options import state_path
from fractal_studio.untrusted import check_torch_file


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
    out = Path(opts.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    save_model(weights_model(model, ema), out)
    state = {
        "step": step, "epoch": epoch, "batch_in_epoch": batch_in_epoch, "total_steps": total_steps,
        "model": model.state_dict(), "optimizer": optimizer.state_dict(),
        "ema": ema.shadow if ema is not None else None, "rng": rng_state(device),
        "history": history, "elapsed": elapsed,
        "options": {k: v for k, v in asdict(opts).items() if k not in ("resume", "stop_after")},
        "config": model.config.to_json(), "class_names": list(model.config.class_names),
    }
    atomic_write(state_path(out), lambda f: torch.save(state, f))


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
