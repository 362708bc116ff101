"""The training loop and `fractal-studio train`: learning, exact resume, argument checks.

Runs offline on a tiny synthetic image folder with the `tiny_mar_in16` preset.
"""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch
from PIL import Image

from fractal_studio.cli.main import main
from fractal_studio.model.weights import load_model
from fractal_studio.training.loop import lr_factor, train
from fractal_studio.training.options import TrainOptions, state_path


def make_folder(root, classes=("circles", "stripes"), per_class=6, size=20, seed=0):
    """Class subfolders of small PNGs with a clear structure per class."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size]
    for c, name in enumerate(classes):
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            if c == 0:
                r = np.hypot(yy - size / 2, xx - size / 2)
                grey = (r < 4 + i % 4) * 200 + 30
            else:
                grey = ((xx + i) // 3 % 2) * 180 + 40
            img = np.stack([grey, grey * 0.5 + 20, 255 - grey], -1) + rng.integers(0, 8, (size, size, 3))
            Image.fromarray(img.clip(0, 255).astype(np.uint8)).save(root / name / f"{i}.png")
    return root


def options(folder, out, **changes):
    base = dict(data=str(folder), preset="tiny_mar_in16", out=str(out), steps=6, batch_size=4, lr=3e-3,
                warmup=2, eval_every=0, eval_count=4, eval_batch=4, log_every=1, device="cpu",
                checkpoint_minutes=1e9)
    base.update(changes)
    return TrainOptions(**base)


def quiet(_message):
    pass


def test_lr_schedule_warms_up_then_decays_to_the_floor():
    values = [lr_factor(s, 100, 10, 0.1) for s in range(100)]
    assert values[0] == pytest.approx(0.1) and values[9] == pytest.approx(1.0)
    assert all(a >= b for a, b in zip(values[9:], values[10:], strict=False))
    assert lr_factor(100, 100, 10, 0.1) == pytest.approx(0.1)


def test_loss_decreases_when_overfitting_a_tiny_batch(tmp_path):
    folder = make_folder(tmp_path / "data", per_class=2)  # 3 training images: a batch is all of them
    summary = train(options(folder, tmp_path / "m.safetensors", steps=40, batch_size=3, lr=5e-3, warmup=5,
                            log_every=5, eval_every=0), log=quiet)
    losses = [h["loss"] for h in summary["history"] if "loss" in h]
    assert len(losses) == 8
    assert losses[-1] < losses[0] - 0.5, losses  # nats/dim: from ~5.5 (uniform) clearly down
    model = load_model(tmp_path / "m.safetensors")
    assert model.config.class_names == ("circles", "stripes")
    assert summary["heldout_bpd"] is not None and np.isfinite(summary["heldout_bpd"])


def test_resume_gives_the_same_parameters_as_an_uninterrupted_run(tmp_path):
    folder = make_folder(tmp_path / "data")  # 11 training images: 2 batches of 4 per epoch
    common = dict(steps=7, ema=0.9, eval_every=2)
    full = train(options(folder, tmp_path / "full.safetensors", **common), log=quiet)
    part = train(options(folder, tmp_path / "part.safetensors", stop_after=3, **common), log=quiet)
    assert part["steps"] == 3 and part["reason"] == "stop_after"
    assert state_path(tmp_path / "part.safetensors").is_file()
    resumed = train(options(folder, tmp_path / "part.safetensors", resume=True, **common), log=quiet)
    assert resumed["steps"] == 7

    raw_full, raw_resumed = full["model"].state_dict(), resumed["model"].state_dict()
    assert raw_full.keys() == raw_resumed.keys()
    for key in raw_full:
        assert torch.equal(raw_full[key], raw_resumed[key]), key
    # The saved weights are the EMA: the same too, and different from the raw weights.
    ema_full = load_model(tmp_path / "full.safetensors").state_dict()
    ema_resumed = load_model(tmp_path / "part.safetensors").state_dict()
    assert all(torch.equal(ema_full[k], ema_resumed[k]) for k in ema_full)
    assert any(not torch.equal(ema_full[k], raw_full[k]) for k in ema_full)
    assert resumed["heldout_bpd"] == full["heldout_bpd"]


def test_resume_of_a_different_run_is_refused(tmp_path):
    folder = make_folder(tmp_path / "data")
    train(options(folder, tmp_path / "m.safetensors", stop_after=1), log=quiet)
    with pytest.raises(Exception, match="another configuration"):
        train(options(folder, tmp_path / "m.safetensors", resume=True, unconditional=True), log=quiet)


def test_a_state_written_before_a_sampling_field_existed_still_resumes(tmp_path):
    import json

    from fractal_studio.training.state import load_state

    folder = make_folder(tmp_path / "data")
    train(options(folder, tmp_path / "m.safetensors", stop_after=1, steps=3), log=quiet)
    path = state_path(tmp_path / "m.safetensors")
    state = load_state(path)
    config = json.loads(state["config"])
    for field in ("detail_spread", "detail_iterations"):  # added after such a state was written
        del config["sampling"][field]
    state["config"] = json.dumps(config, sort_keys=True)
    torch.save(state, path)
    resumed = train(options(folder, tmp_path / "m.safetensors", resume=True, steps=3), log=quiet)
    assert resumed["steps"] == 3


# Each numeric option past its bounds (nan, inf, negative, 1e308, a huge whole number): one line each.
BAD_TRAINING_NUMBERS = [
    ("--steps", str(10**30), "--steps must be a whole number between 1 and 1000000000"),
    ("--minutes", "nan", "--minutes must be a positive number of minutes"),
    ("--minutes", "inf", "--minutes must be a positive number of minutes"),
    ("--minutes", "1e308", "--minutes must be a positive number of minutes, at most"),
    ("--batch-size", str(10**12), "--batch-size must be a whole number between 1 and 65536"),
    ("--batch-size", "-1", "--batch-size must be a whole number between 1"),
    ("--lr", "nan", "--lr must be a positive number"),
    ("--lr", "0", "--lr must be a positive number"),
    ("--warmup", "nan", "--warmup must be"),
    ("--warmup", "1e308", "--warmup must be"),
    ("--clip", "nan", "--clip must be a number"),
    ("--clip", "-1", "--clip cannot be negative"),
    ("--ema", "nan", "--ema is a decay"),
    ("--min-lr-ratio", "inf", "--min-lr-ratio must be between 0 and 1"),
    ("--workers", "-1", "--workers must be a whole number between 0 and 256"),
    ("--workers", str(10**6), "--workers must be a whole number between 0 and 256"),
    ("--checkpoint-minutes", "nan", "--checkpoint-minutes must be a number of minutes, 0 or more"),
    ("--checkpoint-minutes", "-5", "--checkpoint-minutes must be a number of minutes, 0 or more"),
    ("--checkpoint-minutes", "-0.5", "--checkpoint-minutes must be a number of minutes, 0 or more"),
    ("--eval-every", "-1", "--eval-every must be a whole number between 0 and"),
    ("--eval-every", str(10**30), "--eval-every must be a whole number between 0 and"),
    ("--eval-count", "0", "--eval-count must be a whole number between 1 and 100000"),
    ("--eval-count", str(10**9), "--eval-count must be a whole number between 1 and 100000"),
    ("--threads", "0", "--threads must be between 1 and"),
    ("--seed", "-1", "--seed must be between"),
]


def test_options_in_bounds_pass_and_each_bound_is_checked_in_train_itself(tmp_path):
    import dataclasses

    from fractal_studio.errors import UserError
    from fractal_studio.training.options import MAX_STEPS, check_options

    folder = make_folder(tmp_path / "data", per_class=1)
    good = options(folder, tmp_path / "m.safetensors", steps=MAX_STEPS, workers=256, checkpoint_minutes=0,
                   eval_every=0)
    check_options(good)
    for changes in ({"steps": MAX_STEPS + 1}, {"steps": 2.5}, {"steps": True}, {"eval_batch": 0},
                    {"log_every": 0}, {"checkpoint_minutes": float("nan")},
                    {"steps": None, "minutes": float("-inf")}, {"steps": None, "minutes": 10**9}):
        with pytest.raises(UserError):
            check_options(dataclasses.replace(good, **changes))


def run_cli(capsys, *argv):
    code = main(["train", *argv])
    return code, capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--preset", "no_such_preset", "--steps", "1"], "unknown preset 'no_such_preset'"),
        (["--preset", "tiny_mar_in16"], "--steps N or --minutes M"),
        (["--preset", "tiny_mar_in16", "--steps", "0"], "--steps must be a whole number between 1 and"),
        (["--preset", "tiny_mar_in16", "--minutes", "-2"], "--minutes must be a positive number of minutes"),
        (["--preset", "tiny_mar_in16", "--steps", "1", "--batch-size", "0"],
         "--batch-size must be a whole number between 1 and"),
        (["--preset", "tiny_mar_in16", "--steps", "1", "--lr", "-1"], "--lr must be a positive number"),
        (["--preset", "tiny_mar_in16", "--steps", "1", "--ema", "1.5"], "--ema is a decay"),
        (["--preset", "tiny_mar_in16", "--steps", "1", "--resume"], "no training state"),
        (["--preset", "tiny_mar_in16", "--steps", "1", "--set", "depth=3"], "cannot override 'depth'"),
        (["--preset", "tiny_mar_in16", "--steps", "1", "--set", "dropout"], "FIELD=VALUE"),
        (["--preset", "tiny_mar_in16", "--steps", "1", "--set", "dropout=5"], "--set dropout must be in"),
        (["--preset", "tiny_mar_in16", "--steps", "1", "--set", "r_weight=-1"], "--set r_weight must be"),
        (["--preset", "tiny_mar_in16", "--steps", "1", "--lr", "1e30"], "--lr must be a positive number"),
        (["--preset", "tiny_mar_in16", "--steps", "1", "--weight-decay", "nan"], "--weight-decay must be"),
        (["--preset", "tiny_mar_in16", "--steps", "1", "--warmup", "-3"], "--warmup must be"),
        (["--preset", "tiny_mar_in16", "--steps", "1", "--threads", "100000"], "--threads must be between"),
        (["--preset", "tiny_mar_in16", "--steps", "1", "--seed", str(2**70)], "--seed must be between"),
        *[(["--preset", "tiny_mar_in16", *lengths, option, value], message)
          for option, value, message in BAD_TRAINING_NUMBERS
          for lengths in [["--steps", "1"] if option not in ("--steps", "--minutes") else []]],
    ],
)
def test_cli_refuses_bad_arguments(tmp_path, capsys, argv, message):
    folder = make_folder(tmp_path / "data", per_class=1)
    code, err = run_cli(capsys, "--data", str(folder), "--out", str(tmp_path / "m.safetensors"), *argv)
    assert code == 2
    assert message in err
    assert not (tmp_path / "m.safetensors").exists()


def test_cli_refuses_missing_data_and_wrong_suffix(tmp_path, capsys):
    code, err = run_cli(capsys, "--data", str(tmp_path / "nowhere"), "--preset", "tiny_mar_in16",
                        "--out", str(tmp_path / "m.safetensors"), "--steps", "1")
    assert code == 2 and "is neither" in err
    folder = make_folder(tmp_path / "data", per_class=1)
    code, err = run_cli(capsys, "--data", str(folder), "--preset", "tiny_mar_in16",
                        "--out", str(tmp_path / "m.pt"), "--steps", "1")
    assert code == 2 and "should end in .safetensors" in err


def test_cli_refuses_a_preset_of_the_wrong_size_for_fashion_mnist(tmp_path, capsys, monkeypatch):
    from fractal_studio.training import data

    def fake(split="train", **kwargs):
        n = 8
        return torch.zeros(n, 3, 32, 32, dtype=torch.uint8), torch.arange(n) % 10

    monkeypatch.setattr(data, "fashion_mnist", fake)
    code, err = run_cli(capsys, "--data", "fashion-mnist", "--preset", "tiny_mar_in16",
                        "--out", str(tmp_path / "m.safetensors"), "--steps", "1")
    assert code == 2 and "Fashion-MNIST images are 32x32" in err


def test_cli_steps_and_minutes_are_exclusive(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["train", "--data", "photos", "--preset", "tiny_mar_in16", "--out", "m.safetensors",
              "--steps", "1", "--minutes", "1"])
    assert exit_info.value.code == 2
    assert "not allowed with argument" in capsys.readouterr().err


def test_cli_trains_and_writes_the_model(tmp_path, capsys):
    folder = make_folder(tmp_path / "data", per_class=2)
    out = tmp_path / "m.safetensors"
    code = main(["train", "--data", str(folder), "--preset", "tiny_mar_in16", "--out", str(out),
                 "--steps", "2", "--batch-size", "2", "--class-names", "round,striped", "--eval-count", "2",
                 "--set", "dropout=0", "--device", "cpu"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "img/s" in captured.err and "bits/dim" in captured.err
    model = load_model(out)
    assert model.config.class_names == ("round", "striped") and model.config.dropout == 0.0
    assert state_path(out).is_file()


def test_minutes_mode_estimates_the_steps_and_stops_in_time(tmp_path):
    import time

    folder = make_folder(tmp_path / "data")
    start = time.perf_counter()
    summary = train(options(folder, tmp_path / "m.safetensors", steps=None, minutes=0.04, calibration_steps=2,
                            checkpoint_minutes=0.01), log=quiet)
    took = time.perf_counter() - start
    assert summary["reason"] in ("time", "steps")
    assert summary["steps"] >= 4  # calibrated after 2 + 2 steps
    assert took < 0.04 * 60 + 10
    state = torch.load(state_path(tmp_path / "m.safetensors"), weights_only=False)
    assert state["total_steps"] is not None and state["step"] == summary["steps"]


class _RunsCode:
    """Unpickling this object would create a file: a state file must never be unpickled."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def test_resume_never_runs_code_from_a_state_file(tmp_path, capsys):
    folder = make_folder(tmp_path / "data", per_class=2)
    out = tmp_path / "m.safetensors"
    train(options(folder, out, steps=2, batch_size=3), log=quiet)
    marker = tmp_path / "PWNED"
    torch.save({"step": _RunsCode(marker)}, state_path(out))
    code, err = run_cli(capsys, "--data", str(folder), "--preset", "tiny_mar_in16", "--out", str(out),
                        "--steps", "3", "--batch-size", "3", "--resume")
    assert code == 2
    assert "could run code" in err
    assert not marker.exists()


def test_a_state_file_holds_no_pickled_objects(tmp_path):
    folder = make_folder(tmp_path / "data", per_class=2)
    out = tmp_path / "m.safetensors"
    train(options(folder, out, steps=2, batch_size=3, ema=0.9), log=quiet)
    state = torch.load(state_path(out), weights_only=True)  # raises on any pickled object
    assert state["step"] == 2 and state["rng"]["numpy"][0] == "MT19937"


def test_sigterm_during_training_writes_a_checkpoint_and_resume_continues(tmp_path):
    import os
    import signal

    folder = make_folder(tmp_path / "data")
    out = tmp_path / "m.safetensors"
    messages = []

    def log(message):
        messages.append(message)
        if message.startswith("step 3/"):
            os.kill(os.getpid(), signal.SIGTERM)  # as `kill PID` would, in the middle of the run

    before = signal.getsignal(signal.SIGTERM)
    summary = train(options(folder, out, steps=8), log=log)
    assert summary["reason"] == "interrupted" and summary["steps"] == 3
    assert any("checkpoint at step 3 written" in m for m in messages)
    assert signal.getsignal(signal.SIGTERM) is before  # the training's handler is gone again
    resumed = train(options(folder, out, steps=8, resume=True), log=quiet)
    full = train(options(folder, tmp_path / "full.safetensors", steps=8), log=quiet)
    assert resumed["steps"] == 8
    for key, value in full["model"].state_dict().items():
        assert torch.equal(value, resumed["model"].state_dict()[key]), key


def test_an_unwritable_output_is_found_before_training(tmp_path, capsys):
    import os

    if os.geteuid() == 0:
        # root writes anywhere: check a missing folder instead of permissions
        code, err = run_cli(capsys, "--data", str(make_folder(tmp_path / "data", per_class=1)),
                            "--preset", "tiny_mar_in16", "--steps", "1",
                            "--out", str(tmp_path / "nowhere" / "m.safetensors"))
        assert code == 2 and "does not exist" in err
        return
    locked = tmp_path / "locked"
    locked.mkdir()
    os.chmod(locked, 0o500)
    code, err = run_cli(capsys, "--data", str(make_folder(tmp_path / "data", per_class=1)),
                        "--preset", "tiny_mar_in16", "--steps", "1", "--out", str(locked / "m.safetensors"))
    assert code == 2 and "permission denied" in err


def test_unreadable_images_in_a_training_folder_are_skipped_and_counted(tmp_path, caplog, monkeypatch):
    from fractal_studio.training import data
    from fractal_studio.training.data import ImageFolderDataset

    folder = make_folder(tmp_path / "data")
    (folder / "circles" / "broken.png").write_bytes(b"not a png at all")
    good = (folder / "stripes" / "0.png").read_bytes()
    (folder / "stripes" / "cut.png").write_bytes(good[:len(good) - 30])  # pixel data cut off
    messages = []
    summary = train(options(folder, tmp_path / "m.safetensors", steps=6, batch_size=4), log=messages.append)
    assert summary["steps"] == 6
    assert any("skipped 2 unreadable file(s)" in m and "broken.png" in m for m in messages)

    # A file that only fails when its pixels are decoded is replaced by the next one, reported once.
    dataset = ImageFolderDataset(folder, 16, train=True)
    victim = dataset.samples[0][0]
    real_load = data.load_rgb

    def load(path):
        if path == victim:
            raise OSError("image file is truncated")
        return real_load(path)

    monkeypatch.setattr(data, "load_rgb", load)
    caplog.clear()
    first, again = dataset[0], dataset[0]
    assert first[0].shape == (3, 16, 16) and torch.equal(first[0], again[0])
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING and "skipping" in r.getMessage()]
    assert len(warnings) == 1 and victim.name in warnings[0].getMessage()
