"""The surprise map (editing/surprise.py, `fractal-studio surprise`): on toy models trained here (one
with edit-shaped holes, one with the paper's masks as the published models), a patch of a wrong colour
pasted into a correct image is where the map is hottest."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from PIL import Image

from fractal_studio.editing.surprise import surprise_map, window_bits
from fractal_studio.model.fractal import training_masking_rates

from ..conftest import PATCH, pasted_toy_image, toy_images

HELD_OUT_SEEDS = range(10, 18)  # toy images neither model trained on (their seeds differ)


def test_a_pasted_patch_of_a_wrong_colour_is_where_the_model_is_most_surprised(trained_toy):
    toy = trained_toy
    bits = window_bits(toy, pasted_toy_image()[None], orders=2)[0]
    assert np.isfinite(bits).all() and (bits > 0).all()
    elsewhere = np.ones(bits.shape, bool)
    elsewhere[PATCH] = False
    assert bits[PATCH].mean() > bits[elsewhere].max()


@pytest.mark.parametrize("class_given", [False, True])
def test_a_model_trained_with_the_papers_masks_finds_every_pasted_patch(paper_trained_toy, class_given):
    for seed in HELD_OUT_SEEDS:
        image = pasted_toy_image(seed)
        label = int(toy_images(1, torch.Generator().manual_seed(seed), with_labels=True)[1][0])
        class_id = label if class_given else None
        bits = window_bits(paper_trained_toy, image[None], orders=2, class_id=class_id)[0]
        elsewhere = np.ones(bits.shape, bool)
        elsewhere[PATCH] = False
        assert np.isfinite(bits).all() and bits[PATCH].mean() > bits[elsewhere].max(), seed


@pytest.mark.parametrize("learnt, known_share", [("paper", (0.0, 0.8)), ("edit", (0.75, 0.75)),
                                                 ("guided", (0.75, 0.75))])
def test_the_model_is_asked_as_it_learnt(trained_toy, monkeypatch, learnt, known_share):
    """A model that learnt the paper's masks sees few known tokens (as in its training); one that
    learnt holes sees three quarters of its window. Each pass's top-level mask is recorded."""
    model = dataclasses.replace(trained_toy.config, trained_masks=learnt)
    shares, scored = [], torch.zeros(16)
    real_loss = trained_toy.loss

    def recording_loss(images, labels, masks, per_pixel):
        shares.append(1 - masks[0].float().mean(1))
        scored.add_(masks[0][0].float())
        return real_loss(images, labels, masks=masks, per_pixel=per_pixel)

    monkeypatch.setattr(trained_toy, "config", model)
    monkeypatch.setattr(trained_toy, "loss", recording_loss)
    bits = window_bits(trained_toy, np.stack([pasted_toy_image(seed) for seed in (10, 11)]), orders=3)
    assert np.isfinite(bits).all() and len(shares) == 12
    known = torch.cat(shares)
    assert known_share[0] <= float(known.min()) and float(known.max()) <= known_share[1]
    assert int(scored.min()) >= 3  # every token scored at least once per order
    if learnt == "paper":
        assert float(known.mean()) < 0.35
    else:
        assert (scored == 3).all()


def test_published_models_and_older_files_say_they_learnt_the_papers_masks(converted):
    from fractal_studio.model.weights import read_config

    assert {read_config(path).trained_masks for path in converted.values()} == {"paper"}
    assert training_masking_rates(4000, torch.Generator().manual_seed(0)).mean() > 0.7


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
