"""`fractal-studio classify`: the class posterior from a model's own likelihoods."""

from __future__ import annotations

import json

import numpy as np
import torch
from PIL import Image

from fractal_studio.cli import main as entry
from fractal_studio.model.classify import shared_masks
from fractal_studio.model.weights import load_model


def test_every_class_of_an_image_gets_the_same_masks():
    from fractal_studio.model.catalog import resolve_model

    model = load_model(resolve_model("fashion_mnist")).eval()
    torch.manual_seed(0)
    masks = shared_masks(model, images=2, classes=3, device="cpu")
    top = masks[0]
    assert top.shape == (6, model.config.seq_len(0))
    assert torch.equal(top[0], top[1]) and torch.equal(top[0], top[2])
    assert masks[1].shape[0] == 3 * (int(top[0].sum()) + int(top[3].sum()))
    first = int(top[0].sum())
    assert torch.equal(masks[1][:first], masks[1][first:2 * first])


def test_json_fields_and_noise_is_unusual(tmp_path, capsys):
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (28, 28), dtype=np.uint8)).save(tmp_path / "noise.png")
    assert entry.main(["classify", str(tmp_path / "noise.png"), "--model", "fashion_mnist",
                       "--orders", "1", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert len(rows) == 1
    row = rows[0]
    assert {"path", "class_id", "class", "probability", "bits_per_dim", "unusual"} <= set(row)
    assert row["class"] == ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
                            "Sneaker", "Bag", "Ankle boot"][row["class_id"]]
    assert 0 < row["probability"] <= 1
    assert row["bits_per_dim"] > 1.5 and row["unusual"] is True  # far above its own test images


def test_mistakes_are_one_line(tmp_path, capsys):
    (tmp_path / "bad.png").write_bytes(b"\x89PNG not really")
    assert entry.main(["classify", str(tmp_path / "bad.png"), "--model", "fashion_mnist"]) == 2
    assert "bad.png" in capsys.readouterr().err
    Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(tmp_path / "black.png")
    from fractal_studio.model.weights import save_model

    from ..conftest import random_model

    save_model(random_model("fmnist_mar_in32", class_num=1), tmp_path / "unclassed.safetensors")
    assert entry.main(["classify", str(tmp_path / "black.png"), "--model",
                       str(tmp_path / "unclassed.safetensors")]) == 2
    assert "has no classes" in capsys.readouterr().err
