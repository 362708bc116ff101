"""`fractal-studio likelihood`: the paper's bits/dim for a user's own images."""

from __future__ import annotations

import re

import numpy as np
import pytest
from PIL import Image

from fractal_studio.cli import main as entry

from ..conftest import REFERENCE


def bits_of(output: str) -> dict[str, float]:
    return {m.group(1): float(m.group(2)) for m in re.finditer(r"^(.+): ([\d.]+) bits/dim$", output, re.M)}


@pytest.fixture
def images(tmp_path):
    folder = tmp_path / "images"
    (folder / "sub").mkdir(parents=True)
    rng = np.random.default_rng(0)
    flat = np.full((48, 40, 3), 30, np.uint8)  # a plain dark picture (not square: cropped)
    Image.fromarray(flat).save(folder / "flat.png")
    Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(folder / "sub" / "noise.png")
    (folder / "notes.txt").write_text("not an image")
    return folder


def test_bits_per_dim_per_image_and_the_mean_over_a_folder(images, capsys):
    assert entry.main(["likelihood", str(images), "--model", "fashion_mnist", "--orders", "2"]) == 0
    out = capsys.readouterr().out
    bits = bits_of(out)
    assert set(bits) == {str(images / "flat.png"), str(images / "sub" / "noise.png")}
    # Noise costs about 8 bits per value; a plain picture far less.
    assert bits[str(images / "sub" / "noise.png")] > 6 > bits[str(images / "flat.png")]
    summary = r"mean over 2 images: ([\d.]+) bits/dim \(fmnist_mar_in32, 32x32, 2 masking orders"
    mean = float(re.search(summary, out).group(1))
    assert mean == pytest.approx(sum(bits.values()) / 2, abs=1e-3)


def test_an_ar_model_is_exact_whatever_the_orders(images, tmp_path, capsys, converted):
    results = []
    for seed, orders in ((0, 1), (5, 3)):
        entry.main(["likelihood", str(images / "flat.png"), "--model", str(converted["tiny_fractalar"]),
                    "--orders", str(orders), "--seed", str(seed)])
        out = capsys.readouterr().out
        assert "exact (AR)" in out
        results.append(bits_of(out))
    assert results[0] == results[1]


def test_mistakes_are_one_line(images, tmp_path, capsys):
    assert entry.main(["likelihood", str(tmp_path / "missing.png")]) == 2
    assert "does not exist" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert entry.main(["likelihood", str(tmp_path / "empty")]) == 2
    assert "no images" in capsys.readouterr().err
    assert entry.main(["likelihood", str(images), "--orders", "0"]) == 2
    assert "--orders" in capsys.readouterr().err
    assert entry.main(["likelihood", str(images), "--model", str(REFERENCE / "nope.safetensors")]) == 2


def test_a_damaged_image_fails_before_the_model_is_loaded(images, tmp_path, capsys, monkeypatch):
    from fractal_studio.cli import common

    def no_load(*args, **kwargs):
        raise AssertionError("the model was loaded before the images were checked")

    monkeypatch.setattr(common, "load_model_file", no_load)
    data = (images / "flat.png").read_bytes()
    (images / "short.png").write_bytes(data[: len(data) // 2])
    assert entry.main(["likelihood", str(images), "--model", "fashion_mnist"]) == 2
    err = capsys.readouterr().err
    assert "short.png" in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    long_name = tmp_path / ("x" * 300 + ".png")
    assert entry.main(["likelihood", str(long_name), "--model", "fashion_mnist"]) == 2
    assert "over 255 bytes" in capsys.readouterr().err
