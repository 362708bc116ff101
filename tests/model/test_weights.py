"""Our .safetensors format: round trip, self-description, and clear errors for bad files."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from fractal_studio.errors import ModelFileError
from fractal_studio.model.config import preset
from fractal_studio.model.weights import load_model, read_config, save_model

from ..conftest import random_model


def test_round_trip_keeps_every_tensor_and_the_configuration(tmp_path):
    model = random_model("tiny_mar_guiding_in16", class_num=3)
    model = type(model)(model.config.with_classes(("cat", "dog", "eel"))).eval()
    path = tmp_path / "m.safetensors"
    save_model(model, path)
    loaded = load_model(path)
    assert loaded.config == model.config
    assert loaded.config.class_names == ("cat", "dog", "eel")
    ours, theirs = model.state_dict(), loaded.state_dict()
    assert ours.keys() == theirs.keys()
    for key in ours:
        assert torch.equal(ours[key], theirs[key]), key
    assert not loaded.training
    images = torch.randint(0, 256, (2, 3, 16, 16), dtype=torch.uint8)
    with torch.no_grad():
        assert torch.allclose(model.loss(images, masks="all"), loaded.loss(images, masks="all"))


def test_ar_model_round_trip_rebuilds_rotary_tables(tmp_path):
    model = random_model("tiny_ar_in16")
    path = tmp_path / "ar.safetensors"
    save_model(model, path)
    loaded = load_model(path)
    assert torch.equal(loaded.levels[0].rotary, model.levels[0].rotary)
    images = torch.randint(0, 256, (1, 3, 16, 16), dtype=torch.uint8)
    with torch.no_grad():
        assert torch.allclose(model.loss(images), loaded.loss(images))


@pytest.fixture
def saved(tmp_path):
    path = tmp_path / "good.safetensors"
    save_model(random_model("tiny_mar_in16"), path)
    return path


def test_truncated_file_is_reported_with_its_name(saved):
    data = saved.read_bytes()
    saved.write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelFileError, match=r"good\.safetensors is truncated"):
        load_model(saved)


def test_garbage_file_is_reported(tmp_path):
    path = tmp_path / "noise.safetensors"
    path.write_bytes(b"\x00\x01not a model at all" * 10)
    with pytest.raises(ModelFileError, match="noise.safetensors"):
        load_model(path)


def test_empty_and_missing_files(tmp_path):
    empty = tmp_path / "empty.safetensors"
    empty.write_bytes(b"")
    with pytest.raises(ModelFileError, match="only 0 bytes"):
        load_model(empty)
    with pytest.raises(ModelFileError, match="does not exist"):
        load_model(tmp_path / "missing.safetensors")


def test_foreign_safetensors_file_is_explained(tmp_path):
    from safetensors.torch import save_file

    path = tmp_path / "foreign.safetensors"
    save_file({"w": torch.zeros(3)}, str(path))
    with pytest.raises(ModelFileError, match="not a Fractal Studio model"):
        read_config(path)


def test_mismatched_weights_name_the_tensors(tmp_path, saved):
    from safetensors import safe_open

    from fractal_studio.model.weights import write_safetensors

    with safe_open(str(saved), "pt") as f:
        metadata = f.metadata()
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    tensors["levels.0.patch_emb.weight"] = torch.zeros(5, 5)
    del tensors["head.norm.bias"]
    bad = tmp_path / "bad.safetensors"
    write_safetensors(bad, tensors.items(), metadata)
    with pytest.raises(ModelFileError) as error:
        load_model(bad)
    assert "head.norm.bias" in str(error.value) and "levels.0.patch_emb.weight" in str(error.value)
    assert "bad.safetensors" in str(error.value)


def test_failed_write_leaves_no_partial_file(tmp_path, monkeypatch):
    import fractal_studio.model.weights as weights

    def fail(_tensor):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(weights, "_tensor_bytes", fail)
    target = tmp_path / "out.safetensors"
    with pytest.raises(ModelFileError, match="No space left"):
        save_model(random_model("tiny_mar_in16"), target)
    assert list(tmp_path.iterdir()) == []


def test_file_hash_streams_large_files(tmp_path):
    import hashlib

    import numpy as np

    data = np.random.default_rng(0).bytes(2 * (1 << 20) + 123)  # spans several 1 MiB chunks
    (tmp_path / "w.bin").write_bytes(data)
    from fractal_studio.model.weights import file_hash

    assert file_hash(tmp_path / "w.bin") == hashlib.sha256(data).hexdigest()
    with pytest.raises(ModelFileError, match="cannot read"):
        file_hash(tmp_path / "missing.bin")


def test_loading_a_model_skips_initialisers_and_leaves_them_intact(tmp_path):
    import subprocess
    import sys

    import torch.nn as nn

    from fractal_studio.model.weights import model_without_weights

    before = nn.init.normal_
    model = model_without_weights(preset("tiny_mar_in16"))
    assert next(model.parameters()).device.type == "meta"
    assert nn.init.normal_ is before
    # In a fresh process: loading the bundled model does not import PyTorch's compiler (1.2 s).
    code = ("import sys; from fractal_studio.model.weights import load_model; "
            "load_model('models/photo_64.safetensors'); print('torch._dynamo' in sys.modules)")
    root = Path(__file__).resolve().parents[2]
    out = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"
