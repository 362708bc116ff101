"""A training run that fails (#33): a diverging run stops with one line and keeps its last good
checkpoint (never a model of NaN weights), and under several processes a failure on one of them
(a checkpoint rank 0 cannot write) stops every process in one line, none left waiting for it."""

from __future__ import annotations

import hashlib
import os
import socket
import subprocess
import sys
import time

import pytest
import torch

from fractal_studio.cli.main import main
from fractal_studio.errors import UserError
from fractal_studio.model import FractalModel
from fractal_studio.model.weights import load_model
from fractal_studio.training import state as state_module
from fractal_studio.training.distributed import Dist, together
from fractal_studio.training.loop import train
from fractal_studio.training.options import TrainOptions, state_path

from .test_train import make_folder, quiet

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def hashes(*paths) -> list[str]:
    return [hashlib.sha256(open(path, "rb").read()).hexdigest() for path in paths]


def options(folder, out, **changes) -> TrainOptions:
    base = dict(data=str(folder), preset="tiny_mar_in16", out=str(out), steps=6, batch_size=3, lr=3e-3,
                warmup=1, eval_every=0, eval_count=2, eval_batch=2, log_every=1, device="cpu",
                checkpoint_minutes=0)  # a checkpoint after every step
    base.update(changes)
    return TrainOptions(**base)


def nan_loss_from(monkeypatch, call: int, value=float("nan")):
    """The model's training loss is `value` from its `call`-th call on (a run that diverges there)."""
    real = FractalModel.loss
    calls = []

    def loss(self, *args, **kwargs):
        result = real(self, *args, **kwargs)
        calls.append(1)
        return result * value if len(calls) >= call else result
    monkeypatch.setattr(FractalModel, "loss", loss)


@pytest.fixture
def folder(tmp_path):
    return make_folder(tmp_path / "data", per_class=2)


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_a_diverging_run_stops_and_keeps_its_last_checkpoint(value, folder, tmp_path, monkeypatch):
    out = tmp_path / "m.safetensors"
    nan_loss_from(monkeypatch, 3, value)
    with pytest.raises(UserError) as error:
        train(options(folder, out), log=quiet)
    message = str(error.value)
    assert "\n" not in message
    assert message.startswith(f"training diverged at step 3: the loss became {value}; ")
    assert "are kept as the checkpoint at step 2 left them. Lower --lr (it was 0.003)" in message
    assert message.endswith("then --resume from there, or start again")
    # The checkpoint of step 2, its weights finite (load_model refuses NaN) and its state at step 2.
    assert load_model(out) is not None
    assert torch.load(state_path(out), weights_only=True)["step"] == 2


def test_a_run_that_diverges_before_its_first_checkpoint_writes_nothing(folder, tmp_path, monkeypatch,
                                                                           capsys):
    out = tmp_path / "m.safetensors"
    nan_loss_from(monkeypatch, 1)
    code = main(["train", "--data", str(folder), "--preset", "tiny_mar_in16", "--out", str(out),
                 "--steps", "3", "--batch-size", "3", "--device", "cpu", "--eval-count", "2"])
    err = capsys.readouterr().err
    assert code == 2
    last = err.strip().splitlines()[-1]
    assert last == ("fractal-studio: error: training diverged at step 1: the loss became nan; nothing was "
                    "written. Lower --lr (it was 0.001) or lengthen --warmup, then start again")
    assert "Traceback" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data"]


def test_a_checkpoint_of_nan_weights_is_never_written(folder, tmp_path, monkeypatch):
    """Weights that became NaN although the loss was finite (no clipping, so no gradient norm is
    checked): the checkpoint refuses them and the last good one stays, byte for byte."""
    out = tmp_path / "m.safetensors"
    summary = train(options(folder, out, steps=2), log=quiet)
    before = hashes(out, state_path(out))
    model = summary["model"]
    with torch.no_grad():
        next(model.parameters()).fill_(float("nan"))
    with pytest.raises(UserError) as error:
        state_module.save_checkpoint(options(folder, out), model, None, torch.optim.AdamW(model.parameters()),
                                     3, 0, 0, 6, [], torch.device("cpu"), 1.0)
    message = str(error.value)
    assert message.startswith("training diverged: the weights at step 3 hold NaN or infinite values "
                              "(1 tensors: ")
    assert "so no checkpoint was written; m.safetensors and m.state.pt are as the last checkpoint left " \
           "them: lower --lr (it was 0.003), then --resume or start again" in message
    assert hashes(out, state_path(out)) == before


def test_nan_weights_after_a_finite_loss_stop_the_run_at_the_next_checkpoint(folder, tmp_path, monkeypatch):
    out = tmp_path / "m.safetensors"
    real_step = torch.optim.AdamW.step
    steps = []

    def step(self, *args, **kwargs):  # the third update makes the weights NaN (the loss was finite)
        result = real_step(self, *args, **kwargs)
        steps.append(1)
        if len(steps) == 3:
            with torch.no_grad():
                self.param_groups[0]["params"][0].fill_(float("nan"))
        return result
    monkeypatch.setattr(torch.optim.AdamW, "step", step)
    with pytest.raises(UserError, match=r"^training diverged: the weights at step 3 hold NaN .* lower --lr"):
        train(options(folder, out, clip=0.0), log=quiet)
    assert torch.load(state_path(out), weights_only=True)["step"] == 2
    assert load_model(out) is not None


# ------------------------------------------------------------------------------ several processes
def test_together_in_one_process_is_the_action_itself():
    assert together(lambda: 3, Dist(), torch.device("cpu"), "adding") == 3
    with pytest.raises(ValueError, match="boom"):
        together(lambda: (_ for _ in ()).throw(ValueError("boom")), Dist(), torch.device("cpu"), "adding")


FAILING_CHECKPOINT = """
import sys
import fractal_studio.training.loop as loop
from fractal_studio.cli.main import main
from fractal_studio.errors import UserError

real = loop.save_checkpoint


def failing(opts, model, ema, optimizer, step, *rest):
    if step >= 2:
        raise UserError(f"could not write the checkpoint at step {step}: the disk is full (test)")
    return real(opts, model, ema, optimizer, step, *rest)


loop.save_checkpoint = failing
sys.exit(main(sys.argv[1:]))
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_a_checkpoint_rank_0_cannot_write_stops_every_process(tmp_path):
    """Two processes started as any launcher starts them (torchrun would kill the others when one
    exits; other launchers do not): rank 0's checkpoint fails at step 2, and rank 1, which would
    otherwise wait in its next collective call, stops at once with one line of its own."""
    folder = make_folder(tmp_path / "data")
    script = tmp_path / "failing_checkpoint.py"
    script.write_text(FAILING_CHECKPOINT)
    out = tmp_path / "ddp.safetensors"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": ROOT, "WORLD_SIZE": "2",
           "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(free_port())}
    command = [sys.executable, str(script), "train", "--data", str(folder), "--preset", "tiny_mar_in16",
               "--out", str(out), "--steps", "6", "--batch-size", "4", "--device", "cpu", "--eval-count", "2",
               "--threads", "1", "--checkpoint-minutes", "0"]
    started = time.monotonic()
    procs = [subprocess.Popen(command, env={**env, "RANK": str(rank), "LOCAL_RANK": str(rank)}, cwd=tmp_path,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for rank in (0, 1)]
    try:
        results = [proc.communicate(timeout=120) for proc in procs]
    finally:
        for proc in procs:
            proc.kill()
    assert time.monotonic() - started < 120
    (_, err0), (_, err1) = results
    assert [proc.returncode for proc in procs] == [2, 2], (err0[-2000:], err1[-2000:])
    assert err0.strip().splitlines()[-1] == ("fractal-studio: error: could not write the checkpoint at "
                                             "step 2: the disk is full (test)")
    assert err1.strip().splitlines() == [
        "fractal-studio: error: another process failed while writing the checkpoint at step 2, so process 1 "
        "stops too (that process's message says why)"]
    assert "Traceback" not in err0 + err1
    assert torch.load(state_path(out), weights_only=True)["step"] == 1  # the last checkpoint it wrote
