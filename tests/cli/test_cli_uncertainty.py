"""`inpaint --uncertainty OUT.png` and `--reroll-unsure Q`."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from fractal_studio.cli.main import main

FAST = ["--iterations", "2,1", "--quiet"]


@pytest.fixture
def files(tmp_path, converted):
    pixels = np.random.default_rng(2).integers(0, 256, (30, 40, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(tmp_path / "photo.png")
    mask = np.zeros((30, 40), bool)
    mask[6:22, 9:31] = True
    Image.fromarray(mask.astype(np.uint8) * 255).save(tmp_path / "mask.png")
    return {"dir": tmp_path, "pixels": pixels, "mask": mask, "model": str(converted["toy_cols"])}


def run(files, out: str, *extra) -> int:
    args = ["inpaint", files["dir"] / "photo.png", "--mask", files["dir"] / "mask.png",
            "--out", files["dir"] / out, "--seed", "3", "--work-scale", "native", *extra]
    return main([*map(str, args), "--model", files["model"], *FAST])


def read(path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"))


def test_the_uncertainty_map_is_grey_inside_the_mask_and_black_outside(files):
    folder = files["dir"]
    assert run(files, "out.png", "--uncertainty", folder / "bits.png") == 0
    grey = read(folder / "bits.png")
    assert grey.shape == (30, 40, 3) and (grey[..., 0] == grey[..., 2]).all()
    mask = files["mask"]
    assert (grey[~mask] == 0).all() and grey[mask].std() > 0
    assert "uncertainty" in Image.open(folder / "bits.png").text


def test_reroll_unsure_changes_only_the_unsure_patches(files):
    folder = files["dir"]
    assert run(files, "plain.png") == 0
    assert run(files, "rerolled.png", "--reroll-unsure", "0.7", "--uncertainty", folder / "bits.png") == 0
    plain, rerolled, mask = read(folder / "plain.png"), read(folder / "rerolled.png"), files["mask"]
    changed = (plain != rerolled).any(-1)
    assert changed.any() and not changed[~mask].any()
    assert changed.mean() < 0.7 * mask.mean()  # patches of the hole, not all of it
    assert (rerolled[~mask] == files["pixels"][~mask]).all()


def test_a_bad_quantile_is_one_line(files, capsys):
    assert run(files, "out.png", "--reroll-unsure", "1.5") == 2
    error = capsys.readouterr().err
    assert "--reroll-unsure must be" in error and "Traceback" not in error
