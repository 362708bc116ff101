"""bf16 or fp32 by measurement: the choice, its cache, and reproducible results either way."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from fractal_studio.errors import UserError
from fractal_studio.sampling import SampleRequest, precision, sample_all

from ..conftest import random_model

CPU = torch.device("cpu")


@pytest.fixture
def bf16_cpu(monkeypatch, tmp_path):
    """A CPU with AMX, a fresh cache, and probe times set by the test (counted)."""
    monkeypatch.setattr(precision, "cpu_bf16_kind", lambda: "amx")
    monkeypatch.setenv(precision.CACHE_ENV, str(tmp_path))
    times = {"fp32": 1.0, "bf16": 0.5}
    probed = []

    def probe(model, rows=1):
        probed.append((model.config.name, rows))
        return times["fp32"], times["bf16"]

    monkeypatch.setattr(precision, "probe_seconds", probe)
    return times, probed, tmp_path


def test_auto_takes_bf16_where_it_measured_faster_and_remembers(bf16_cpu):
    times, probed, folder = bf16_cpu
    model = random_model("tiny_mar_in16")
    assert precision.sampling_precision(model, CPU) == "bf16"
    assert len(probed) == 1
    assert precision.sampling_precision(model, CPU) == "bf16"
    assert len(probed) == 1, "measured again instead of using the cache"
    cache = json.loads((folder / "precision.json").read_text())
    assert "bf16" in cache.values()
    # Another shape is measured on its own; a tie goes to fp32.
    times["bf16"] = 0.95
    assert precision.sampling_precision(random_model("tiny_ar_in16"), CPU) == "fp32"
    assert len(probed) == 2
    # More rows per product are measured apart (bf16 pays with more rows); 3 and 4 rows alike.
    times["bf16"] = 0.5
    assert precision.sampling_precision(model, CPU, rows=3) == "bf16"
    assert precision.sampling_precision(model, CPU, rows=4) == "bf16"
    assert probed[2:] == [("tiny_mar_in16", 4)]


def test_explicit_precision_devices_and_cpus_without_bf16_never_measure(bf16_cpu, monkeypatch):
    _, probed, _ = bf16_cpu
    model = random_model("tiny_mar_in16")
    assert precision.sampling_precision(model, CPU, "fp32") == "fp32"
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: (8, 6))
    assert precision.sampling_precision(model, torch.device("cuda"), "auto") == "bf16"
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: (7, 5))
    assert precision.sampling_precision(model, torch.device("cuda"), "auto") == "fp16"
    assert precision.sampling_precision(model, torch.device("mps"), "auto") == "fp32"
    monkeypatch.setattr(precision, "cpu_bf16_kind", lambda: "none")
    assert precision.sampling_precision(model, CPU, "auto") == "fp32"
    assert probed == []
    with pytest.raises(UserError, match="precision"):
        precision.sampling_precision(model, CPU, "fp8")
    with pytest.raises(UserError, match="fp16 runs on CUDA GPUs only"):
        precision.sampling_precision(model, CPU, "fp16")


def test_a_damaged_cache_is_measured_again(bf16_cpu):
    _, probed, folder = bf16_cpu
    (folder / "precision.json").write_text("{not json")
    assert precision.sampling_precision(random_model("tiny_mar_in16"), CPU) == "bf16"
    assert len(probed) == 1
    assert json.loads((folder / "precision.json").read_text())  # rewritten whole


def test_the_probe_times_a_real_edit_in_each_precision():
    fp32, bf16 = precision.probe_seconds(random_model("tiny_mar_in16"), rows=2)
    assert 0 < fp32 < 10 and 0 < bf16 < 10


def test_what_auto_chose_is_reproducible_for_a_seed(bf16_cpu):
    model = random_model("tiny_mar_in16")
    known = np.ones((16, 16), bool)
    known[4:12, 4:12] = False
    canvas = np.random.default_rng(0).integers(0, 256, (16, 16, 3), dtype=np.uint8)
    request = SampleRequest(canvas=canvas, known=known, seed=3, iterations=(4, 2))
    first = sample_all(model, request).candidates[0]
    again = sample_all(model, request).candidates[0]
    assert np.array_equal(first, again)
    as_chosen = sample_all(model, SampleRequest(canvas=canvas, known=known, seed=3, iterations=(4, 2),
                                                precision="bf16")).candidates[0]
    assert np.array_equal(first, as_chosen)  # auto ran in bf16 (measured faster), like asking for it
