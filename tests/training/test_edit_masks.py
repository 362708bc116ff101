"""Edit-shaped training: the regions drawn, the objective restricted to them, the training options."""

from __future__ import annotations

import pytest
import torch

from fractal_studio.model import FractalModel, preset
from fractal_studio.model.fractal import training_mask
from fractal_studio.model.weights import read_config
from fractal_studio.training import edit_masks
from fractal_studio.training.edit_masks import edit_region, training_regions
from fractal_studio.training.loop import train
from fractal_studio.training.options import TrainOptions

from .test_train import make_folder, options, quiet


@pytest.mark.parametrize("shape", edit_masks.SHAPES)
def test_every_shape_leaves_known_and_unknown_pixels(shape, monkeypatch):
    monkeypatch.setattr(edit_masks, "SHAPES", (shape,))
    torch.manual_seed(0)
    for _ in range(50):
        region = edit_region(32)
        assert region.dtype == torch.bool and region.shape == (32, 32)
        assert region.any() and not region.all()


def test_shapes_look_like_their_edits(monkeypatch):
    torch.manual_seed(1)
    strip = edit_masks.strip(64)
    columns, rows = strip.all(0), strip.all(1)
    assert columns.any() or rows.any()  # a full-height or full-width band ...
    assert bool(strip[0].all() or strip[-1].all() or strip[:, 0].all() or strip[:, -1].all())  # on a side
    frame = edit_masks.frame(64)
    assert frame[0].all() and frame[-1].all() and frame[:, 0].all() and frame[:, -1].all()
    assert not frame[32, 32]
    box = edit_masks.box(64)
    ys, xs = box.nonzero(as_tuple=True)
    assert box[ys.min():ys.max() + 1, xs.min():xs.max() + 1].all()  # one filled rectangle
    covers = [float(edit_masks.brush_strokes(64).float().mean()) for _ in range(30)]
    assert 0.01 < sum(covers) / len(covers) < 0.5


def test_styles():
    torch.manual_seed(0)
    assert training_regions("paper", 8, 16) is None
    edit = training_regions("edit", 8, 16)
    assert edit.shape == (8, 16, 16) and not edit.all(dim=(1, 2)).any()
    mixed = training_regions("mix", 200, 16)
    whole = mixed.all(dim=(1, 2)).float().mean()
    assert 0.35 < float(whole) < 0.65  # about half are the paper's (every pixel unknown)
    with pytest.raises(ValueError, match="mask style"):
        training_regions("boxes", 2, 16)


def test_regions_follow_the_seed():
    torch.manual_seed(3)
    first = training_regions("mix", 6, 16)
    torch.manual_seed(3)
    assert torch.equal(first, training_regions("mix", 6, 16))


def test_an_all_unknown_region_is_the_papers_objective():
    """Every pixel unknown must be exactly the authors' training masks (same draws, same loss)."""
    model = FractalModel(preset("tiny_mar_guiding_in16")).train()
    images = torch.randint(0, 256, (3, 3, 16, 16), dtype=torch.uint8)
    torch.manual_seed(7)
    paper = model.loss(images)
    torch.manual_seed(7)
    region = model.loss(images, unknown=torch.ones(3, 16, 16, dtype=torch.bool))
    assert torch.equal(paper, region)


def test_training_masks_inside_a_region_never_mask_known_tokens():
    torch.manual_seed(0)
    unknown = torch.zeros(50, 16, dtype=torch.bool)
    unknown[:, 3:7] = True
    unknown[10, :] = True
    masks = training_mask(50, 16, "cpu", unknown)
    assert not (masks & ~unknown).any()
    assert (masks.sum(1) >= 1).all()  # at least one of the unknown tokens is predicted
    assert (masks.sum(1) <= unknown.sum(1)).all()


@pytest.mark.parametrize("name", ["tiny_mar_in16", "tiny_ar_in16", "tiny_mar_guiding_in16"])
def test_only_unknown_pixels_are_scored(name, monkeypatch):
    """Known pixels are black, unknown white: the pixel head must only ever see white pixels."""
    model = FractalModel(preset(name))
    unknown = torch.zeros(4, 16, 16, dtype=torch.bool)
    unknown[:, 5:11, 2:9] = True
    images = torch.where(unknown.unsqueeze(1), torch.tensor(255, dtype=torch.uint8),
                         torch.tensor(0, dtype=torch.uint8)).expand(-1, 3, -1, -1).contiguous()
    seen = []
    original = model.head.nll

    def spy(cond, values):
        seen.append(values.clone())
        return original(cond, values)

    monkeypatch.setattr(model.head, "nll", spy)
    for mode in (model.train, model.eval):
        mode()
        seen.clear()
        torch.manual_seed(0)
        loss = model.loss(images, unknown=unknown)
        assert torch.isfinite(loss).all()
        values = torch.cat(seen)
        assert values.numel() > 0
        if name == "tiny_ar_in16":  # AR levels pass every unknown patch down: known pixels come
            continue  # along inside them (4x4 patches), but are not scored (checked below)
        assert (values == 255).all()


def test_known_pixels_in_an_ar_patch_are_context_not_scored():
    model = FractalModel(preset("tiny_ar_in16")).eval()
    images = torch.randint(0, 256, (2, 3, 16, 16), dtype=torch.uint8)
    unknown = torch.zeros(2, 16, 16, dtype=torch.bool)
    unknown[:, 4:6, 4:6] = True  # one 4x4 patch, partly unknown
    base = model.loss(images, unknown=unknown)
    changed = images.clone()
    changed[:, :, 7, 7] = 255 - changed[:, :, 7, 7]  # a known pixel in the same patch
    # Teacher forcing inside the patch: a known pixel later in raster order is context for nothing
    # scored (it comes after every unknown pixel), so the objective must not change.
    assert torch.allclose(base, model.loss(changed, unknown=unknown))


def test_edit_mix_and_guided_styles_train(tmp_path):
    folder = make_folder(tmp_path / "data", per_class=2)
    for style in ("edit", "mix", "guided"):
        summary = train(options(folder, tmp_path / f"{style}.safetensors", steps=12, batch_size=3, lr=5e-3,
                                warmup=2, log_every=4, masks=style), log=quiet)
        losses = [h["loss"] for h in summary["history"] if "loss" in h]
        assert losses[-1] < losses[0], (style, losses)
        # The file says which masks the model learnt (what the surprise map asks of it).
        assert read_config(tmp_path / f"{style}.safetensors").trained_masks == style


def test_init_from_starts_at_a_models_weights(tmp_path):
    folder = make_folder(tmp_path / "data")
    first = train(options(folder, tmp_path / "a.safetensors", steps=3), log=quiet)
    second = train(options(folder, tmp_path / "b.safetensors", steps=1, lr=1e-9, warmup=0, clip=0,
                           init_from=str(tmp_path / "a.safetensors")), log=quiet)
    before, after = first["model"].state_dict(), second["model"].state_dict()
    assert all(torch.allclose(before[k], after[k], atol=1e-5) for k in before)
    fresh = train(options(folder, tmp_path / "c.safetensors", steps=1, lr=1e-9, warmup=0, clip=0), log=quiet)
    assert any(not torch.allclose(before[k], fresh["model"].state_dict()[k], atol=1e-5) for k in before)


def test_init_from_refuses_another_architecture(tmp_path):
    folder = make_folder(tmp_path / "data")
    train(options(folder, tmp_path / "a.safetensors", steps=1), log=quiet)
    with pytest.raises(Exception, match="is not a tiny_ar_in16 model"):
        train(options(folder, tmp_path / "b.safetensors", preset="tiny_ar_in16", steps=1,
                      init_from=str(tmp_path / "a.safetensors")), log=quiet)


@pytest.mark.parametrize(("changes", "message"), [
    (dict(masks="boxes"), "--masks must be one of"),
    (dict(init_from="/no/such/model.safetensors"), "is not a file"),
])
def test_bad_options_are_refused(tmp_path, changes, message):
    from fractal_studio.training.options import check_options

    opts = TrainOptions(data=str(make_folder(tmp_path / "d", per_class=1)), preset="tiny_mar_in16",
                        out=str(tmp_path / "m.safetensors"), steps=1, **changes)
    with pytest.raises(Exception, match=message):
        check_options(opts)


def test_guided_holes_know_every_second_pixel_from_a_coarser_view_and_score_only_true_pixels():
    torch.manual_seed(3)
    images = torch.randint(0, 256, (32, 3, 16, 16), dtype=torch.uint8)
    regions = training_regions("guided", 32, 16)
    guided_images, guided_regions = edit_masks.guided_batch(images, regions)
    pins = regions & ~guided_regions
    changed = (guided_images != images).any(1)
    assert pins.flatten(1).any(1).sum() >= 8  # about half the holes hold guide pixels
    assert not (changed & ~pins).any()  # known pixels and the pixels still to draw keep their values
    assert (guided_regions <= regions).all()
    for k in range(32):  # on one lattice of every second pixel each way
        ys, xs = torch.nonzero(pins[k], as_tuple=True)
        if len(ys):
            assert len(set((ys % 2).tolist())) == 1 and len(set((xs % 2).tolist())) == 1
    # A guide pixel is the photo as seen at half the resolution, scaled back up.
    coarse = torch.nn.functional.avg_pool2d(images.float(), 2)
    blurred = torch.nn.functional.interpolate(coarse, scale_factor=2, mode="bicubic", align_corners=False)
    expected = blurred.round().clamp(0, 255).to(torch.uint8)
    assert torch.equal(guided_images.permute(0, 2, 3, 1)[pins], expected.permute(0, 2, 3, 1)[pins])
