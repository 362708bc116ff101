"""`inpaint --pins`: the pins are kept bit for bit, the fill is drawn around them, nothing else changes."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from fractal_studio.cli.main import main

FAST = ["--iterations", "2,1", "--quiet"]


@pytest.fixture
def files(tmp_path, converted):
    rng = np.random.default_rng(1)
    pixels = rng.integers(0, 256, (41, 57, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(tmp_path / "photo.png")
    mask = np.zeros((41, 57), bool)
    mask[8:20, 18:32] = True
    Image.fromarray(mask.astype(np.uint8) * 255).save(tmp_path / "mask.png")
    pins = np.zeros((41, 57, 4), np.uint8)
    pins[12, 22] = (255, 0, 0, 255)      # pins inside the hole, at its edge and in its middle
    pins[8, 18] = (0, 255, 0, 255)
    pins[14:16, 25:27] = (7, 200, 99, 255)
    pins[19, 31] = (1, 2, 3, 128)        # partly transparent: not a pin
    pins[30, 40] = (255, 255, 255, 255)  # outside the hole: ignored
    Image.fromarray(pins, "RGBA").save(tmp_path / "pins.png")
    return {"dir": tmp_path, "pixels": pixels, "mask": mask, "pins": pins,
            "model": str(converted["toy_cols"])}


def run(files, *extra) -> int:
    args = ["inpaint", files["dir"] / "photo.png", "--mask", files["dir"] / "mask.png",
            "--out", files["dir"] / "out.png", "--seed", "3", "--work-scale", "native", *extra]
    return main([*map(str, args), "--model", files["model"], *FAST])


def inpaint(files, *extra) -> np.ndarray:
    assert run(files, *extra) == 0
    return np.asarray(Image.open(files["dir"] / "out.png").convert("RGB"))


def refused(files, capsys, pins_file, message: str) -> None:
    capsys.readouterr()
    assert run(files, "--pins", pins_file) == 2
    error = capsys.readouterr().err
    assert message in error and "Traceback" not in error
    assert not (files["dir"] / "out.png").exists()


def test_pins_are_kept_exactly_and_the_rest_is_generated(files):
    result = inpaint(files, "--pins", files["dir"] / "pins.png")
    pins, mask, pixels = files["pins"], files["mask"], files["pixels"]
    pinned = (pins[..., 3] == 255) & mask
    assert pinned.sum() == 6
    assert np.array_equal(result[pinned], pins[pinned][:, :3])
    assert np.array_equal(result[~mask], pixels[~mask])  # outside the hole: the image, the outside pin too
    around = mask & ~pinned
    assert (result[around] != pixels[around]).any(axis=-1).mean() > 0.5  # the hole is generated


def test_pins_change_the_fill_around_them(files):
    plain = inpaint(files)
    pinned = inpaint(files, "--pins", files["dir"] / "pins.png")
    mask = files["mask"]
    # the same seed: pins are context to the sampler, so the fill around them differs
    assert not np.array_equal(plain[mask], pinned[mask])
    assert np.array_equal(plain[~mask], pinned[~mask])


def test_wrong_size_pins_are_a_user_error(files, capsys):
    Image.fromarray(np.zeros((40, 57, 4), np.uint8), "RGBA").save(files["dir"] / "small.png")
    refused(files, capsys, files["dir"] / "small.png", "is 57×40 but the image is 57×41; the pins must have")


def test_pins_without_transparency_are_a_user_error(files, capsys):
    Image.fromarray(files["pixels"]).save(files["dir"] / "opaque.png")
    refused(files, capsys, files["dir"] / "opaque.png", "has no transparency")


def test_unreadable_pins_are_a_user_error(files, capsys):
    (files["dir"] / "bad.png").write_bytes(b"not a png")
    refused(files, capsys, files["dir"] / "bad.png", "bad.png")


def test_a_mask_all_pins_is_a_user_error(files, capsys):
    pins = np.zeros((41, 57, 4), np.uint8)
    pins[files["mask"]] = (9, 9, 9, 255)
    Image.fromarray(pins, "RGBA").save(files["dir"] / "all.png")
    refused(files, capsys, files["dir"] / "all.png", "every pixel of the mask is pinned")
