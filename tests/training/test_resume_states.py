"""`train --resume` with a training state of the wrong shape (#33): missing keys, values of the wrong
type, tensors of the wrong names, shapes or types, optimizer moments for other parameters, RNG states
that cannot be restored, a state of another preset. Each is one line and exit 2 before training
starts (no step is logged; a wrong structure is refused before even the data is read), and the model
file and the state are left exactly as they were."""

from __future__ import annotations

import hashlib
import shutil

import pytest
import torch

from fractal_studio.cli.main import main
from fractal_studio.model import preset
from fractal_studio.training.loop import train
from fractal_studio.training.options import TrainOptions, state_path

from .test_train import make_folder, quiet


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A data folder and a run of 2 steps: its model file and its state."""
    root = tmp_path_factory.mktemp("resume")
    folder = make_folder(root / "data", per_class=2)
    out = root / "m.safetensors"
    train(TrainOptions(data=str(folder), preset="tiny_mar_in16", out=str(out), steps=2, batch_size=3,
                       lr=3e-3, warmup=1, eval_every=0, eval_count=2, eval_batch=2, log_every=1,
                       device="cpu", checkpoint_minutes=1e9, ema=0.9), log=quiet)
    return folder, out


def first(tensors, ndim=2):
    return next(name for name, value in tensors.items() if value.ndim == ndim)


def transposed(state):
    name = first(state["model"])
    state["model"][name] = state["model"][name].t().contiguous()


def moment_reshaped(state):
    entry = next(iter(state["optimizer"]["state"].values()))
    entry["exp_avg"] = entry["exp_avg"].reshape(-1)[:3].clone()


def numpy_rng_broken(state):
    state["rng"]["numpy"] = ["MT19937", torch.zeros(3, dtype=torch.int64), 0, 0, 0.0]


def setter(key, value):
    def change(state):
        state[key] = value
    return change


def dropped(*keys):
    def change(state):
        for key in keys:
            del state[key]
    return change


def replaced(state):
    return [state]  # what is saved instead of the state


def saved(change, state):
    """The state `change` made: a new value where it returns a list, else the state it changed."""
    result = change(state)
    return result if isinstance(result, list) else state


CASES = {
    "not a table": (replaced, "is a list, not a table of the run's state"),
    "no optimizer": (dropped("optimizer"), "has no optimizer"),
    "no rng or history": (dropped("rng", "history"), "has no rng, history"),
    "step is text": (setter("step", "5"), "has step as a str, not int"),
    "step is a bool": (setter("step", True), "has step as a bool, not int"),
    "negative epoch": (setter("epoch", -3), "has a negative epoch (-3)"),
    "history is text": (setter("history", "abc"), "has history as a str, not list"),
    "a history record of text": (setter("history", [{"step": 1, "loss": "x"}]), "a history entry"),
    "elapsed is text": (setter("elapsed", "long"), "has elapsed as 'long'"),
    "config is a number": (setter("config", 7), "has config as a int, not str"),
    "model weights are a list": (setter("model", [1, 2]), "has model as a list, not dict"),
    "ema weights of numbers": (setter("ema", {"a": 1}), "has ema weights that are not a table of named"),
    "rng that cannot be restored": (numpy_rng_broken, "generator states that cannot be restored"),
    "a weight of the wrong shape": (transposed, "does not fit the model tiny_mar_in16: its model weight "),
    "a weight missing": (lambda s: s["model"].pop(first(s["model"])), "its model weights have 1 missing"),
    "an extra weight": (lambda s: s["model"].__setitem__("levels.9.x", torch.zeros(1)), "1 unexpected (e.g. "
                        "levels.9.x)"),
    "an integer weight": (lambda s: s["model"].__setitem__(first(s["model"]), s["model"][first(s["model"])]
                                                           .long()), "int64, not "),
    "an EMA weight of the wrong shape": (lambda s: s["ema"].__setitem__(first(s["ema"]), torch.zeros(2, 2)),
                                         "its ema weight "),
    "optimizer moments of the wrong shape": (moment_reshaped, "its optimizer's exp_avg for a "),
    "optimizer for other parameters": (lambda s: s["optimizer"]["param_groups"].pop(),
                                       "its optimizer state is for another set of parameters"),
    "optimizer without its state": (lambda s: s["optimizer"].pop("state"),
                                    "an optimizer state without its state and param_groups"),
    "a state of another preset": (setter("config", preset("tiny_ar_in16").to_json()),
                                  "was written for another configuration"),
}


def digest(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("case", list(CASES))
def test_a_state_of_the_wrong_shape_is_one_line_before_training(case, trained, tmp_path, capsys):
    folder, source = trained
    out = tmp_path / "m.safetensors"
    shutil.copy(source, out)
    state = torch.load(state_path(source), weights_only=True)
    change, message = CASES[case]
    torch.save(saved(change, state), state_path(out))
    before = {path.name: digest(path) for path in tmp_path.iterdir()}
    code = main(["train", "--data", str(folder), "--preset", "tiny_mar_in16", "--out", str(out),
                 "--steps", "4", "--batch-size", "3", "--ema", "0.9", "--resume"])
    err = capsys.readouterr().err
    assert code == 2, err
    *before_it, error = err.splitlines()  # the data and the model may be described first
    assert error.startswith("fractal-studio: error: --resume: ") and message in error, err
    assert len(before_it) <= 2 and not any(line.startswith(("step ", "resumed")) for line in before_it), err
    assert {path.name: digest(path) for path in tmp_path.iterdir()} == before


def test_the_unchanged_state_still_resumes(trained, tmp_path, capsys):
    """The checks refuse only what is wrong: the state as written resumes and trains on."""
    folder, source = trained
    out = tmp_path / "m.safetensors"
    shutil.copy(source, out)
    shutil.copy(state_path(source), state_path(out))
    code = main(["train", "--data", str(folder), "--preset", "tiny_mar_in16", "--out", str(out),
                 "--steps", "3", "--batch-size", "3", "--ema", "0.9", "--resume"])
    err = capsys.readouterr().err
    assert code == 0, err
    assert "resumed from" in err and "at step 2" in err
    assert torch.load(state_path(out), weights_only=True)["step"] == 3
