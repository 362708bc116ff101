"""`torchrun --nproc_per_node=2 -m fractal_studio train ...` on CPU (gloo): the replicas stay identical."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import numpy as np
import torch
from PIL import Image

from fractal_studio.model.weights import load_model
from fractal_studio.training.options import state_path

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def make_folder(root, count=12, size=20):
    """A flat folder (unconditional data) of small striped PNGs."""
    root.mkdir(parents=True)
    rng = np.random.default_rng(0)
    xx = np.arange(size)[None, :].repeat(size, 0)
    for i in range(count):
        grey = ((xx + i) // 3 % 2) * 180 + 40 + rng.integers(0, 8, (size, size))
        Image.fromarray(np.stack([grey, grey // 2, 255 - grey], -1).astype(np.uint8)).save(root / f"{i}.png")
    return root


def test_two_processes_keep_identical_parameters(tmp_path):
    folder = make_folder(tmp_path / "data")
    out = tmp_path / "ddp.safetensors"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": ROOT}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
               "-m", "fractal_studio", "train", "--data", str(folder), "--preset", "tiny_mar_in16",
               "--out", str(out), "--steps", "4", "--batch-size", "4", "--lr", "3e-3", "--device", "cpu",
               "--eval-every", "2", "--eval-count", "2", "--threads", "1"]
    proc = subprocess.run(command, capture_output=True, text=True, env=env, timeout=120, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]

    # Every rank all-gathers its parameters at the end and compares them with the others'.
    found = re.findall(r"parameters of the 2 processes: max difference (\S+)", proc.stderr)
    assert found == ["0"], proc.stderr[-3000:]
    # Only rank 0 logs: one line per logged step, not two.
    assert len(re.findall(r"^step 4/4 ", proc.stderr, re.M)) == 1
    assert "2 processes" in proc.stderr
    assert state_path(out).is_file()

    state = torch.load(state_path(out), weights_only=False)
    assert state["step"] == 4
    trained = load_model(out).state_dict()
    torch.manual_seed(0)
    from fractal_studio.model import FractalModel

    initial = FractalModel(load_model(out).config).state_dict()
    assert any(not torch.equal(trained[k], initial[k]) for k in trained)
    assert all(torch.equal(trained[k], state["model"][k]) for k in trained)  # no EMA: saved = raw
