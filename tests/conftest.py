"""Shared fixtures: the authors' reference checkpoints converted once per session, tiny random models."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

# Imported now, not by its plugin's end-of-session summary: on CPython 3.11.7 that late import
# (with assertion rewriting) intermittently failed with "SystemError: AST constructor recursion
# depth mismatch" after every test had passed.
import hypothesis  # noqa: F401
import pytest
import torch

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
# The precision measurements (sampling/precision.py) go to a folder of this session, never the
# user's cache.
os.environ["FRACTAL_STUDIO_CACHE"] = tempfile.mkdtemp(prefix="fractal-studio-test-cache-")
# Installed models (model/download.py) likewise: the user's own never show in a test.
os.environ["FRACTAL_STUDIO_MODELS"] = tempfile.mkdtemp(prefix="fractal-studio-test-models-")

FIXTURES = Path(__file__).parent / "fixtures"
REFERENCE = FIXTURES / "reference"
TINY_REFERENCE_MODELS = ("tiny_fractalar", "tiny_fractalmar", "tiny_fractalmar_4level_guiding")

torch.set_num_threads(min(2, torch.get_num_threads()))


@pytest.fixture(autouse=True)
def fp32_unless_asked(monkeypatch):
    """'auto' samples in fp32, as on a CPU without native bf16: the tests compare pixels with
    recorded fp32 results, and a timing (sampling/precision.py) must not decide what they see.
    The precision tests undo this."""
    from fractal_studio.sampling import precision

    monkeypatch.setattr(precision, "cpu_bf16_kind", lambda: "none")


@pytest.fixture(autouse=True)
def one_torch_thread():
    """Every test model is tiny: one intra-op thread is fastest, and far faster on a busy machine
    (measured 0.4 s instead of 15-28 s for a 4-window edit while other processes used both cores)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def converted(tmp_path_factory):
    """name -> path of our .safetensors converted from the reference checkpoint of that name."""
    from fractal_studio.model.convert import convert_checkpoint

    out = tmp_path_factory.mktemp("converted")
    paths = {}
    for name in (*TINY_REFERENCE_MODELS, "toy_cols"):
        folder = REFERENCE / name
        paths[name] = out / f"{name}.safetensors"
        convert_checkpoint(folder / "checkpoint-last.pth", paths[name], str(folder / "config.json"))
    return paths


@pytest.fixture(scope="session")
def toy_model(converted):
    from fractal_studio.model.weights import load_model

    return load_model(converted["toy_cols"])


def random_model(preset_name: str, seed: int = 0, **changes):
    """A randomly initialised model of a small preset, in eval mode (weights perturbed so all matter)."""
    from fractal_studio.model import FractalModel, preset

    torch.manual_seed(seed)
    model = FractalModel(preset(preset_name, **changes))
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.add_(torch.randn_like(parameter) * 0.05)
    return model.eval()
