"""Helpers shared by the benchmarks (run on demand, never in the test suite)."""

from __future__ import annotations

import time
from contextlib import contextmanager

import torch


@contextmanager
def timed(results: dict, name: str):
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    start = time.perf_counter()
    yield
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    results[name] = time.perf_counter() - start


def random_model(preset_name: str, seed: int = 0, device="cpu", **changes):
    from fractal_studio.model import FractalModel, preset

    torch.manual_seed(seed)
    with torch.device(device):
        model = FractalModel(preset(preset_name, **changes))
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.add_(torch.randn_like(parameter) * 0.02)
    return model.eval()
