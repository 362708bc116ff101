"""The surprise map (editing/surprise.py, `fractal-studio surprise`): on a toy model trained here, a
patch of a wrong colour pasted into a correct image is where the map is hottest."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from fractal_studio.editing.surprise import surprise_map, window_bits

# The toy distribution: a left half of one colour and a right half of another, the pair one of
# three, plus uniform noise of +-6 (as the reference fixture toy_cols).
PAIRS = [((250, 140, 0), (0, 120, 120)), ((120, 0, 160), (250, 250, 120)), ((0, 0, 0), (120, 200, 250))]
PATCH = (slice(4, 8), slice(8, 12))
STEPS = 150


def toy_images(count: int, generator: torch.Generator) -> torch.Tensor:
    pairs = torch.tensor(PAIRS, dtype=torch.float32)[torch.randint(0, 3, (count,), generator=generator)]
    images = torch.empty(count, 3, 16, 16)
    images[:, :, :, :8] = pairs[:, 0, :, None, None]
    images[:, :, :, 8:] = pairs[:, 1, :, None, None]
    images += torch.randint(-6, 7, images.shape, generator=generator)
    return images.clamp(0, 255).to(torch.uint8)


@pytest.fixture(scope="module")
def toy():
    """A tiny MAR model trained for a few seconds on the toy images, with edit-shaped regions."""
    from fractal_studio.model import FractalModel, preset
    from fractal_studio.training.edit_masks import training_regions

    torch.manual_seed(0)
    generator = torch.Generator().manual_seed(0)
    model = FractalModel(preset("tiny_mar_in16", class_num=1, dropout=0.0)).train()
    optimiser = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.0)
    for _ in range(STEPS):
        loss = model.loss(toy_images(16, generator), None, unknown=training_regions("edit", 16, 16)).mean()
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    return model.eval()


def pasted_image() -> np.ndarray:
    image = toy_images(1, torch.Generator().manual_seed(5))[0].permute(1, 2, 0).numpy().copy()
    wrong = PAIRS[0][1] if tuple(image[0, 15]) != PAIRS[0][1] else PAIRS[1][1]
    image[PATCH] = wrong  # a right-half colour of another pair
    return image


def test_a_pasted_patch_of_a_wrong_colour_is_where_the_model_is_most_surprised(toy):
    bits = window_bits(toy, pasted_image()[None], orders=2)[0]
    assert np.isfinite(bits).all() and (bits > 0).all()
    elsewhere = np.ones(bits.shape, bool)
    elsewhere[PATCH] = False
    assert bits[PATCH].mean() > bits[elsewhere].max()


def test_a_larger_image_is_covered_by_overlapping_windows_and_the_patch_stays_hottest(toy):
    image = np.tile(pasted_image(), (2, 3, 1))  # 32x48: several windows, the patch six times
    tile_patch = np.zeros((16, 16), bool)
    tile_patch[PATCH] = True
    patches = np.tile(tile_patch, (2, 3))
    progress = []
    bits, scale = surprise_map(toy, image, progress=progress.append)
    assert bits.shape == (32, 48) and scale == 1 and np.isfinite(bits).all()
    assert progress[-1] == 1.0
    assert bits[patches].min() > np.percentile(bits[~patches], 99)


def test_the_command_writes_the_map_and_the_mask_of_the_surprising_pixels(toy, tmp_path, capsys):
    from fractal_studio.cli import main as entry
    from fractal_studio.editing.imageio import read_png_metadata
    from fractal_studio.model.weights import save_model

    model_path = tmp_path / "toy.safetensors"
    save_model(toy, model_path)
    Image.fromarray(pasted_image()).save(tmp_path / "photo.png")
    bits = window_bits(toy, pasted_image()[None], orders=2)[0]  # what the command computes
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
