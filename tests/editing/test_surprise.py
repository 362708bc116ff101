"""The surprise map (editing/surprise.py, `fractal-studio surprise`): on a toy model trained here, a
patch of a wrong colour pasted into a correct image is where the map is hottest."""

from __future__ import annotations

import numpy as np
from PIL import Image

from fractal_studio.editing.surprise import surprise_map, window_bits

from ..conftest import PATCH, pasted_toy_image


def test_a_pasted_patch_of_a_wrong_colour_is_where_the_model_is_most_surprised(trained_toy):
    toy = trained_toy
    bits = window_bits(toy, pasted_toy_image()[None], orders=2)[0]
    assert np.isfinite(bits).all() and (bits > 0).all()
    elsewhere = np.ones(bits.shape, bool)
    elsewhere[PATCH] = False
    assert bits[PATCH].mean() > bits[elsewhere].max()


def test_a_larger_image_is_covered_by_overlapping_windows_and_the_patch_stays_hottest(trained_toy):
    toy = trained_toy
    image = np.tile(pasted_toy_image(), (2, 3, 1))  # 32x48: several windows, the patch six times
    tile_patch = np.zeros((16, 16), bool)
    tile_patch[PATCH] = True
    patches = np.tile(tile_patch, (2, 3))
    progress = []
    bits, scale = surprise_map(toy, image, progress=progress.append)
    assert bits.shape == (32, 48) and scale == 1 and np.isfinite(bits).all()
    assert progress[-1] == 1.0
    assert bits[patches].min() > np.percentile(bits[~patches], 99)


def test_the_command_writes_the_map_and_the_mask_of_the_surprising_pixels(trained_toy, tmp_path, capsys):
    toy = trained_toy
    from fractal_studio.cli import main as entry
    from fractal_studio.editing.imageio import read_png_metadata
    from fractal_studio.model.weights import save_model

    model_path = tmp_path / "toy.safetensors"
    save_model(toy, model_path)
    Image.fromarray(pasted_toy_image()).save(tmp_path / "photo.png")
    bits = window_bits(toy, pasted_toy_image()[None], orders=2)[0]  # what the command computes
    elsewhere = np.ones(bits.shape, bool)
    elsewhere[PATCH] = False
    threshold = (bits[PATCH].mean() + bits[elsewhere].max()) / 2
    args = ["surprise", str(tmp_path / "photo.png"), "--out", str(tmp_path / "map.png"),
            "--model", str(model_path), "--mask-out", str(tmp_path / "mask.png"), f"--threshold={threshold}",
            "--quiet", "--orders", "2"]
    assert entry.main(args) == 0
    grey = np.asarray(Image.open(tmp_path / "map.png"))
    mask = np.asarray(Image.open(tmp_path / "mask.png")) > 127
    assert grey.shape == (16, 16) and grey[PATCH].mean() > grey.mean()
    assert mask[PATCH].mean() >= 0.5 and not mask[elsewhere].any()  # in the patch, nowhere else
    assert "surprise_scale" in read_png_metadata(tmp_path / "map.png")
    no_threshold = ["surprise", str(tmp_path / "photo.png"), "--out", str(tmp_path / "map2.png"),
                    "--model", str(model_path), "--mask-out", str(tmp_path / "mask2.png")]
    assert entry.main(no_threshold) == 2
    assert "--threshold" in capsys.readouterr().err
