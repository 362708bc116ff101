"""`fractal-studio batch`: a folder of images edited with one model load (in-process, the toy model)."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from fractal_studio.cli import batch as batch_module
from fractal_studio.cli.main import main
from fractal_studio.editing.imageio import read_png_metadata

FAST = ["--iterations", "2,1"]


@pytest.fixture
def folders(tmp_path, converted):
    """photos/ (a.png, b.jpg as PNG data named .png, c.png without a mask), masks/ and the toy model."""
    rng = np.random.default_rng(1)
    photos, masks = tmp_path / "photos", tmp_path / "masks"
    photos.mkdir()
    masks.mkdir()
    pixels = {}
    for name, size in (("a", (30, 40)), ("b", (24, 33)), ("c", (20, 20))):
        pixels[name] = rng.integers(0, 256, (*size, 3), dtype=np.uint8)
        Image.fromarray(pixels[name]).save(photos / f"{name}.png")
    holes = {}
    for name in ("a", "b"):
        hole = np.zeros(pixels[name].shape[:2], bool)
        hole[5:12, 8:19] = True
        holes[name] = hole
        Image.fromarray(hole.astype(np.uint8) * 255).save(masks / f"{name}.png")
    return {"dir": tmp_path, "photos": photos, "masks": masks, "out": tmp_path / "out", "pixels": pixels,
            "holes": holes, "model": str(converted["toy_cols"])}


def batch(folders, *args) -> int:
    return main(["batch", "--images", str(folders["photos"]), "--out", str(folders["out"]),
                 "--model", folders["model"], *FAST, *map(str, args)])


def read(path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"))


def test_a_folder_with_masks_by_name_keeps_known_pixels_bit_exact(folders, capsys):
    assert batch(folders, "--masks", folders["masks"], "--seed", "3") == 0
    captured = capsys.readouterr()
    assert sorted(p.name for p in folders["out"].iterdir()) == ["a.png", "b.png"]
    for name in ("a", "b"):
        result, hole = read(folders["out"] / f"{name}.png"), folders["holes"][name]
        assert np.array_equal(result[~hole], folders["pixels"][name][~hole])  # bit for bit
        assert (result[hole] != folders["pixels"][name][hole]).any()  # and the hole was filled
        record = read_png_metadata(folders["out"] / f"{name}.png")
        assert record["task"] == "inpaint" and record["source"] == f"{name}.png" and record["seed"] == "3"
    assert "batch: 2 edited, 1 skipped, 0 failed" in captured.err
    assert str(folders["out"] / "a.png") in captured.out.splitlines()


def test_the_same_edit_as_the_single_image_command(folders, capsys):
    """A batch's result is the pixels `inpaint` gives for that image, mask and seed (one model load
    or many, the edit is the same)."""
    assert batch(folders, "--masks", folders["masks"], "--seed", "5") == 0
    single = folders["dir"] / "single.png"
    assert main(["inpaint", str(folders["photos"] / "a.png"), "--mask", str(folders["masks"] / "a.png"),
                 "--out", str(single), "--model", folders["model"], "--seed", "5", *FAST]) == 0
    assert np.array_equal(read(single), read(folders["out"] / "a.png"))


def test_no_mask_is_a_note_and_the_progress_line_shows_which_file(folders, capsys):
    assert batch(folders, "--masks", folders["masks"]) == 0
    err = capsys.readouterr().err
    assert "note: c.png: no mask named c.* in --masks; skipped" in err
    assert "[1/3] a.png" in err and "[2/3] b.png" in err  # the progress line names the file
    assert batch(folders, "--masks", folders["masks"], "--overwrite", "-q") == 0
    assert capsys.readouterr().err == ""  # -q: no notes, no progress, no summary when all went well
    (folders["masks"] / "b.png").write_bytes(b"broken")
    assert batch(folders, "--masks", folders["masks"], "--overwrite", "-q") == 1
    err = capsys.readouterr().err.splitlines()  # errors and a failed batch's summary still show
    assert len(err) == 2 and err[0].startswith("fractal-studio: error: b.png: ") and "1 failed" in err[1]


def test_bad_files_are_one_line_each_and_the_rest_go_on(folders, capsys):
    (folders["photos"] / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    Image.fromarray(np.zeros((5, 5), np.uint8)).save(folders["masks"] / "broken.png")
    Image.fromarray(np.full((7, 7), 255, np.uint8)).save(folders["masks"] / "c.png")  # the wrong size
    assert batch(folders, "--masks", folders["masks"]) == 1
    err = capsys.readouterr().err.splitlines()
    failures = [line for line in err if line.startswith("fractal-studio: ")]
    assert len(failures) == 2, err
    assert failures[0].startswith("fractal-studio: error: broken.png: ") and "damaged" in failures[0]
    assert failures[1].startswith("fractal-studio: error: c.png: ") \
        and "the mask must have the image's size" in failures[1]
    assert "batch: 2 edited, 0 skipped, 2 failed" in err[-1]
    assert sorted(p.name for p in folders["out"].iterdir()) == ["a.png", "b.png"]


def test_one_mask_for_every_image(folders, capsys):
    for name in ("b", "c"):
        (folders["photos"] / f"{name}.png").unlink()
    Image.fromarray(folders["pixels"]["a"][::-1].copy()).save(folders["photos"] / "d.png")
    (folders["masks"] / "a.png").rename(folders["photos"] / "mask.png")  # kept among the images
    assert batch(folders, "--masks", folders["photos"] / "mask.png") == 0
    assert sorted(p.name for p in folders["out"].iterdir()) == ["a.png", "d.png"]
    hole = folders["holes"]["a"]
    assert np.array_equal(read(folders["out"] / "d.png")[~hole], folders["pixels"]["a"][::-1][~hole])


def test_a_rerun_resumes_and_overwrite_redoes(folders, capsys, monkeypatch):
    assert batch(folders, "--masks", folders["masks"]) == 0
    first = (folders["out"] / "a.png").stat().st_mtime_ns
    capsys.readouterr()
    assert batch(folders, "--masks", folders["masks"]) == 0
    assert "batch: 0 edited, 3 skipped (2 already done), 0 failed" in capsys.readouterr().err
    assert (folders["out"] / "a.png").stat().st_mtime_ns == first
    assert batch(folders, "--masks", folders["masks"], "--overwrite", "--seed", "9") == 0
    assert "batch: 2 edited" in capsys.readouterr().err
    assert read_png_metadata(folders["out"] / "a.png")["seed"] == "9"


def test_ctrl_c_leaves_no_half_written_file_and_a_rerun_finishes(folders, capsys, monkeypatch):
    """Ctrl+C during the second image's write: the first result is there, the second is not, no
    temporary file is left, and the rerun does only the rest."""
    from fractal_studio import files

    real = files._replace_all
    calls = []

    def interrupted(temps, targets):
        calls.append(targets)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(temps, targets)

    monkeypatch.setattr(files, "_replace_all", interrupted)
    assert main(["batch", "--images", str(folders["photos"]), "--out", str(folders["out"]), "--model",
                 folders["model"], *FAST, "--masks", str(folders["masks"])]) == 130
    assert "interrupted: run it again" in capsys.readouterr().err
    assert sorted(p.name for p in folders["out"].iterdir()) == ["a.png"]  # nothing hidden left either
    monkeypatch.setattr(files, "_replace_all", real)
    assert batch(folders, "--masks", folders["masks"]) == 0
    assert "batch: 1 edited, 2 skipped (1 already done), 0 failed" in capsys.readouterr().err


def test_outpaint_and_uncrop_and_candidates(folders, capsys):
    assert batch(folders, "--extend", "2,0,5,1") == 0
    for name, pixels in folders["pixels"].items():
        result = read(folders["out"] / f"{name}.png")
        h, w = pixels.shape[:2]
        assert result.shape == (h + 1, w + 7, 3)
        assert np.array_equal(result[0:h, 2:2 + w], pixels)
        assert read_png_metadata(folders["out"] / f"{name}.png")["extend"] == "2,0,5,1"
    uncropped = folders["dir"] / "uncropped"
    assert main(["batch", "--images", str(folders["photos"]), "--out", str(uncropped), "--uncrop", "1.5",
                 "--model", folders["model"], "--candidates", "2", *FAST]) == 0
    assert sorted(p.name for p in uncropped.iterdir()) == ["a-1.png", "a-2.png", "b-1.png", "b-2.png",
                                                             "c-1.png", "c-2.png"]
    record = read_png_metadata(uncropped / "b-2.png")
    assert record["task"] == "uncrop" and record["uncrop_scale"] == "1.5" and record["candidate"] == "2/2"


@pytest.mark.parametrize(("args", "message"), [
    (["--extend", "0,0,0,0"], "--extend adds nothing"),
    (["--uncrop", "0.5"], "--scale must be greater than 1"),
    (["--masks", "PHOTOS"], "--masks is the --images folder"),
    (["--masks", "DIR/nothing"], "--masks DIR/nothing does not exist"),
    (["--masks", "MASKS", "--candidates", "0"], "--candidates must be between 1 and 256"),
    (["--masks", "MASKS", "--class", "zebra"], "unknown class 'zebra'"),
])
def test_bad_options_are_one_line_before_any_work(folders, capsys, args, message):
    replaced = [a.replace("MASKS", str(folders["masks"])).replace("PHOTOS", str(folders["photos"]))
                .replace("DIR", str(folders["dir"])) for a in args]
    assert batch(folders, *replaced) == 2
    err = capsys.readouterr().err
    assert message.replace("DIR", str(folders["dir"])) in err and len(err.strip().splitlines()) == 1
    assert not folders["out"].exists() or not any(folders["out"].iterdir())


def test_masks_extend_and_uncrop_exclude_each_other(folders, capsys):
    with pytest.raises(SystemExit) as stopped:
        batch(folders, "--masks", folders["masks"], "--extend", "1,1,1,1")
    assert stopped.value.code == 2 and "not allowed with argument" in capsys.readouterr().err


def test_out_must_not_be_a_folder_it_reads(folders, capsys):
    assert main(["batch", "--images", str(folders["photos"]), "--out", str(folders["masks"]),
                 "--masks", str(folders["masks"]), "--model", folders["model"], *FAST]) == 2
    assert "--out is a folder the batch reads" in capsys.readouterr().err


def test_image_files_are_found_by_suffix_and_hidden_ones_left_out(tmp_path):
    for name in ("b.JPG", "a.png", ".hidden.png", "notes.txt", "c.tiff"):
        (tmp_path / name).write_bytes(b"x")
    (tmp_path / "d.png").mkdir()
    assert [p.name for p in batch_module.image_files(tmp_path)] == ["a.png", "b.JPG", "c.tiff"]


def test_two_images_of_one_name_do_not_write_over_each_other(folders, capsys):
    Image.fromarray(folders["pixels"]["a"]).save(folders["photos"] / "a.tif")
    assert batch(folders, "--masks", folders["masks"]) == 1
    err = capsys.readouterr().err
    assert "fractal-studio: error: a.tif: its result a.png is also the result of a.png; rename one of them" \
        in err
    assert read_png_metadata(folders["out"] / "a.png")["source"] == "a.png"
