"""Shared fixtures: the authors' reference checkpoints converted once per session, tiny random models."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

# Imported now, not by its plugin's end-of-session summary: on CPython 3.11.7 that late import
# (with assertion rewriting) intermittently failed with "SystemError: AST constructor recursion
# depth mismatch" after every test had passed.
import hypothesis  # noqa: F401
import numpy as np
import pytest
import torch

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
# The precision measurements (sampling/precision.py) go to a folder of this session, never the
# user's cache.
os.environ["FRACTAL_STUDIO_CACHE"] = tempfile.mkdtemp(prefix="fractal-studio-test-cache-")
# Installed models (model/download.py) likewise: the user's own never show in a test.
# Every other folder of the app (settings, autosave, logs; fractal_studio/paths.py) too, and the
# command line never moves the user's files from older versions' folders.
os.environ["FRACTAL_STUDIO_HOME"] = tempfile.mkdtemp(prefix="fractal-studio-test-home-")
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


# ------------------------------------------------------------------------------ a toy trained here
# The toy distribution: a left half of one colour and a right half of another, the pair one of
# three, plus uniform noise of +-6 (as the reference fixture toy_cols).
PAIRS = [((250, 140, 0), (0, 120, 120)), ((120, 0, 160), (250, 250, 120)), ((0, 0, 0), (120, 200, 250))]
PATCH = (slice(4, 8), slice(8, 12))
STEPS = 300
PAPER_STEPS, PAPER_LR = 400, 3e-3


def toy_images(count: int, generator: torch.Generator, with_labels: bool = False):
    labels = torch.randint(0, 3, (count,), generator=generator)
    pairs = torch.tensor(PAIRS, dtype=torch.float32)[labels]
    images = torch.empty(count, 3, 16, 16)
    images[:, :, :, :8] = pairs[:, 0, :, None, None]
    images[:, :, :, 8:] = pairs[:, 1, :, None, None]
    images += torch.randint(-6, 7, images.shape, generator=generator)
    images = images.clamp(0, 255).to(torch.uint8)
    return (images, labels) if with_labels else images


@pytest.fixture(scope="session")
def trained_toy():
    """A tiny MAR model trained for a few seconds on the toy images, with edit-shaped regions."""
    from fractal_studio.model import FractalModel, preset
    from fractal_studio.training.edit_masks import training_regions

    torch.manual_seed(0)
    generator = torch.Generator().manual_seed(0)
    model = FractalModel(preset("tiny_mar_in16", class_num=1, dropout=0.0, trained_masks="edit")).train()
    optimiser = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.0)
    for _ in range(STEPS):
        loss = model.loss(toy_images(16, generator), None, unknown=training_regions("edit", 16, 16)).mean()
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    return model.eval()


@pytest.fixture(scope="session")
def paper_trained_toy():
    """The toy trained as the published models are: the paper's masks (most tokens masked, none
    given), each colour pair a class (labels dropped a tenth of the time, for guidance)."""
    from fractal_studio.model import FractalModel, preset

    torch.manual_seed(0)
    generator = torch.Generator().manual_seed(0)
    model = FractalModel(preset("tiny_mar_in16", class_num=3, dropout=0.0)).train()
    optimiser = torch.optim.AdamW(model.parameters(), lr=PAPER_LR, weight_decay=0.0)
    for _ in range(PAPER_STEPS):
        images, labels = toy_images(16, generator, with_labels=True)
        loss = model.loss(images, labels).mean()
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    assert model.config.trained_masks == "paper"
    return model.eval()


def pasted_toy_image(seed: int = 5) -> np.ndarray:
    """A toy image with a patch, in its right half, of the right-half colour of another pair."""
    images, labels = toy_images(1, torch.Generator().manual_seed(seed), with_labels=True)
    image = images[0].permute(1, 2, 0).numpy().copy()
    image[PATCH] = PAIRS[(int(labels[0]) + 1) % len(PAIRS)][1]
    return image


@pytest.fixture
def server():
    """A local checkpoint server on 127.0.0.1 for one test (tests/checkpoint_server.py)."""
    from .checkpoint_server import CheckpointServer

    running = CheckpointServer()
    yield running
    running.close()
