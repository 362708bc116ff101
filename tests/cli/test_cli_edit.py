"""The editing commands end to end (in-process), with the trained toy model as a model file."""

from __future__ import annotations

import struct
import zlib

import numpy as np
import pytest
import torch
from PIL import Image

from fractal_studio.cli import common
from fractal_studio.cli.main import main
from fractal_studio.editing.imageio import read_png_metadata
from fractal_studio.errors import UserError
from fractal_studio.model import preset

FAST = ["--iterations", "2,1", "--quiet"]


@pytest.fixture
def files(tmp_path, converted):
    """An odd-sized photo-like image, a mask for it, and the toy model file."""
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, (41, 57, 3), dtype=np.uint8)
    image = tmp_path / "photo.png"
    Image.fromarray(pixels).save(image)
    mask = np.zeros((41, 57), np.uint8)
    mask[10:17, 20:29] = 255
    mask_path = tmp_path / "mask.png"
    Image.fromarray(mask).save(mask_path)
    return {"dir": tmp_path, "image": image, "pixels": pixels, "mask": mask_path, "mask_array": mask > 0,
            "model": str(converted["toy_cols"])}


def cli(files, *args) -> int:
    return main([*map(str, args), "--model", files["model"], *FAST])


def pngs(folder) -> set[str]:
    return {p.name for p in folder.glob("*.png")}


def test_inpaint_writes_the_result_and_its_record(files, capsys):
    out = files["dir"] / "out.png"
    assert cli(files, "inpaint", files["image"], "--mask", files["mask"], "--out", out, "--seed", "4") == 0
    result = np.asarray(Image.open(out).convert("RGB"))
    inside = files["mask_array"]
    assert np.array_equal(result[~inside], files["pixels"][~inside])
    record = read_png_metadata(out)
    assert record["task"] == "inpaint" and record["seed"] == "4" and record["iterations"] == "2,1"
    assert record["spread"] == "1"  # the model's default
    assert record["model_sha256"] == common_hash(files["model"]) and record["source"] == "photo.png"
    capsys.readouterr()
    assert main(["info", str(out)]) == 0
    shown = capsys.readouterr().out
    for key in ("task: inpaint", "seed: 4", "mask_sha256:", "work_scale:", "windows:", "version:"):
        assert key in shown


def common_hash(path) -> str:
    from fractal_studio.model.weights import file_hash

    return file_hash(path)


def test_candidates_write_numbered_files(files):
    out = files["dir"] / "cand.png"
    assert cli(files, "inpaint", files["image"], "--mask", files["mask"], "--out", out,
               "--candidates", "3") == 0
    assert {"cand-1.png", "cand-2.png", "cand-3.png"} <= pngs(files["dir"]) and not out.exists()
    assert read_png_metadata(files["dir"] / "cand-2.png")["candidate"] == "2/3"


def test_outpaint(files):
    out = files["dir"] / "wide.png"
    assert cli(files, "outpaint", files["image"], "--extend", "3,0,10,2", "--out", out) == 0
    result = np.asarray(Image.open(out).convert("RGB"))
    assert result.shape == (43, 70, 3)
    assert np.array_equal(result[0:41, 3:60], files["pixels"])
    assert read_png_metadata(out)["extend"] == "3,0,10,2"


def test_uncrop_and_class_edit(files):
    out = files["dir"] / "uncrop.png"
    assert cli(files, "uncrop", files["image"], "--scale", "1.5", "--out", out, "--work-scale", "3") == 0
    assert Image.open(out).size == (57, 41)
    assert read_png_metadata(out)["work_scale"] == "3"
    out = files["dir"] / "edit.png"
    assert cli(files, "edit", files["image"], "--mask", files["mask"], "--class", "2", "--cfg", "2",
               "--out", out, "--feather", "2", "--work-scale", "native") == 0
    result = np.asarray(Image.open(out).convert("RGB"))
    assert np.array_equal(result[~files["mask_array"]], files["pixels"][~files["mask_array"]])
    record = read_png_metadata(out)
    assert record["class"] == "2" and record["cfg"] == "2" and record["feather"] == "2"
    assert record["seamless"] == "on"
    plain = files["dir"] / "plain.png"
    assert cli(files, "edit", files["image"], "--mask", files["mask"], "--class", "2", "--cfg", "2",
               "--out", plain, "--feather", "2", "--work-scale", "native", "--no-seamless") == 0
    assert read_png_metadata(plain)["seamless"] == "off"
    assert not np.array_equal(np.asarray(Image.open(plain).convert("RGB")), result)
    assert record["precision"] == "fp32"  # what auto chose (no native bf16 in the tests)
    bf16 = files["dir"] / "bf16.png"
    assert cli(files, "edit", files["image"], "--mask", files["mask"], "--class", "2", "--cfg", "2",
               "--out", bf16, "--feather", "2", "--work-scale", "native", "--precision", "bf16") == 0
    assert read_png_metadata(bf16)["precision"] == "bf16"


def test_generate(files):
    out = files["dir"] / "gen.png"
    assert cli(files, "generate", "--class", "1", "--count", "2", "--out", out) == 0
    assert Image.open(files["dir"] / "gen-1.png").size == (16, 16)
    assert (files["dir"] / "gen-2.png").exists()
    grid = files["dir"] / "grid.png"
    assert cli(files, "generate", "--count", "4", "--grid", "--out", grid) == 0
    assert Image.open(grid).size == (34, 34)
    assert read_png_metadata(grid)["task"] == "generate"


# ----------------------------------------------------------------------------- bad input
# (a file given where an image is read, what the message says)
BAD_FILES = [("empty", "is empty (0 bytes)"), ("text", "not an image"),
             ("truncated", "damaged or incomplete"), ("folder", "is a folder"), ("huge", "megapixels")]


BAD_NUMBERS = [
    ("--cfg", "nan", "guidance"),
    ("--cfg", "inf", "guidance"),
    ("--temperature", "nan", "temperature"),
    ("--temperature", "-1", "temperature"),
    ("--spread", "nan", "spread must be"),
    ("--spread", "-0.1", "spread must be"),
    ("--detail-spread", "nan", "--detail-spread must be between"),
    ("--detail-spread", "2", "--detail-spread must be between"),
    ("--margin", "-1", "margin"),
    ("--feather", "-1", "feather"),
    ("--work-scale", "0", "work scale"),
    ("--work-scale", "0.5", "work scale"),
    ("--work-scale", "nan", "work scale"),
    ("--iterations", "1,2,3,4,5,6", "iteration counts"),
    ("--candidates", "-3", "--candidates"),
    ("--threads", "0", "--threads"),
]

BAD = [
    (["inpaint", "{dir}/missing.png", "--mask", "{mask}", "--out", "{dir}/o.png"], "not found"),
    (["inpaint", "{image}", "--mask", "{dir}/nomask.png", "--out", "{dir}/o.png"], "nomask.png"),
    (["inpaint", "{image}", "--mask", "{small_mask}", "--out", "{dir}/o.png"],
     "the mask must have the image"),
    (["inpaint", "{image}", "--mask", "{black_mask}", "--out", "{dir}/o.png"], "all black"),
    (["edit", "{image}", "--mask", "{mask}", "--class", "klass 9", "--out", "{dir}/o.png"], "unknown class"),
    (["edit", "{image}", "--mask", "{mask}", "--class", "7", "--out", "{dir}/o.png"], "out of range"),
    (["inpaint", "{image}", "--mask", "{mask}", "--out", "{dir}/o.png", "--model", "{bad_model}"],
     "bad.safetensors"),
    (["inpaint", "{image}", "--mask", "{mask}", "--out", "{dir}/o.png", "--model", "no_such_model"],
     "bundled model 'no_such_model' not found"),
    (["inpaint", "{image}", "--mask", "{mask}", "--out", "{image}"], "refusing to overwrite the source"),
    (["inpaint", "{image}", "--mask", "{mask}", "--out", "{mask}"], "the --mask file this command reads"),
    (["inpaint", "{image}", "--mask", "{mask}", "--out", "{mask}", "--overwrite"], "the --mask file"),
    (["edit", "{image}", "--mask", "{mask}", "--class", "0", "--out", "{mask}"], "the --mask file"),
    (["inpaint", "{image}", "--mask", "{mask}", "--out", "{dir}/o.jpg"], "must be a .png"),
    (["inpaint", "{image}", "--mask", "{mask}", "--out", "{dir}/nodir/o.png"], "does not exist"),
    (["outpaint", "{image}", "--extend", "1,2,3", "--out", "{dir}/o.png"], "4 numbers"),
    (["outpaint", "{image}", "--extend", "0,0,0,0", "--out", "{dir}/o.png"], "adds nothing"),
    (["uncrop", "{image}", "--scale", "0.5", "--out", "{dir}/o.png"], "greater than 1"),
    (["inpaint", "{image}", "--mask", "{mask}", "--out", "{dir}/o.png", "--work-scale", "big"], "work scale"),
    (["inpaint", "{image}", "--mask", "{mask}", "--out", "{dir}/o.png", "--iterations", "4"], "iteration"),
    (["inpaint", "{image}", "--mask", "{mask}", "--out", "{dir}/o.png", "--iterations", "a,b"],
     "whole numbers"),
    (["inpaint", "{image}", "--mask", "{mask}", "--out", "{dir}/o.png", "--iterations", "0"],
     "--iterations must be at least 1"),
    (["inpaint", "{image}", "--mask", "{mask}", "--out", "{dir}/o.png", "--cfg", "0.2"], "guidance"),
    (["inpaint", "{image}", "--mask", "{mask}", "--out", "{dir}/o.png", "--cfg", "1e308"], "guidance"),
    (["inpaint", "{image}", "--mask", "{mask}", "--out", "{dir}/o.png", "--temperature", "1e-30"],
     "temperature must be between"),
    (["inpaint", "{image}", "--mask", "{mask}", "--out", "{dir}/o.png", "--spread", "2"], "spread must be"),
    (["inpaint", "{image}", "--mask", "{mask}", "--out", "{dir}/o.png", "--candidates", "0"],
     "between 1 and"),
    (["inpaint", "{image}", "--mask", "{mask}", "--out", "{dir}/o.png", "--margin", "99"], "margin"),
    (["inpaint", "{image}", "--mask", "{mask}", "--out", "{dir}/o.png", "--device", "tpu"], "unknown device"),
    (["inpaint", "{image}", "--mask", "{mask}", "--out", "{dir}/o.png", "--threads", "100000"],
     "--threads must be between 1 and 1024"),
    (["inpaint", "{image}", "--mask", "{mask}", "--out", "{dir}/o.png", "--seed", str(2**70)],
     "--seed must be between 0 and 2**31 - 1"),
    (["inpaint", "{image}", "--mask", "{mask}", "--out", "{dir}/o.png", "--seed", "-1"], "--seed must be"),
    (["generate", "--count", "100000000", "--grid", "--out", "{dir}/o.png"],
     "--count must be between 1 and 256"),
    (["inpaint", "{image}", "--mask", "{mask}", "--out", "{dir}/o.png", "--candidates", "1000"],
     "--candidates must be between"),
    (["outpaint", "{image}", "--extend", "100000,100000,100000,100000", "--out", "{dir}/o.png"],
     "results are limited to"),
    (["outpaint", "{image}", "--extend", "0,0,100000,0", "--out", "{dir}/o.png"], "results are limited to"),
    (["uncrop", "{image}", "--scale", "1000", "--out", "{dir}/o.png"],
     "--scale must be greater than 1 and at most 100"),
    (["uncrop", "{image}", "--scale", "1e308", "--out", "{dir}/o.png"],
     "--scale must be greater than 1 and at most 100"),
    (["outpaint", "{image}", "--extend", f"0,0,{10**30},0", "--out", "{dir}/o.png"],
     "results are limited to"),
    # Damaged or wrong files given as the image, the mask or the model.
    *[(["inpaint", "{" + bad + "}", "--mask", "{mask}", "--out", "{dir}/o.png"], why)
      for bad, why in BAD_FILES],
    *[(["inpaint", "{image}", "--mask", "{" + bad + "}", "--out", "{dir}/o.png"], why)
      for bad, why in BAD_FILES],
    (["inpaint", "{image}", "--mask", "{mask}", "--out", "{dir}/o.png", "--model", "{pickle}"],
     "not a safetensors model file"),
    (["inpaint", "{image}", "--mask", "{mask}", "--out", "{dir}/o.png", "--model", "{folder}"],
     "is a folder"),
    (["inpaint", "{image}", "--mask", "{mask}", "--out", "{dir}/o.png", "--model", "{text}"],
     "not a safetensors model file"),
    (["inpaint", "{image}", "--mask", "{mask}", "--out", "{folder}"], "is a folder"),
    # Numbers that are not numbers, or out of range (inpaint OPTION VALUE).
    *[(["inpaint", "{image}", "--mask", "{mask}", "--out", "{dir}/o.png", option, value], why)
      for option, value, why in BAD_NUMBERS],
    (["outpaint", "{image}", "--extend", "a,b,c,d", "--out", "{dir}/o.png"], "4 whole numbers"),
    (["outpaint", "{image}", "--extend", "-1,0,0,0", "--out", "{dir}/o.png"], "goes after '='"),
    (["outpaint", "{image}", "--extend=-1,0,0,0", "--out", "{dir}/o.png"], ">= 0"),
    (["uncrop", "{image}", "--scale", "nan", "--out", "{dir}/o.png"], "greater than 1"),
    (["uncrop", "{image}", "--scale", "inf", "--out", "{dir}/o.png"], "greater than 1"),
    (["generate", "--count", "0", "--out", "{dir}/o.png"], "--count"),
    (["generate", "--class", "99", "--out", "{dir}/o.png"], "out of range"),
    (["edit", "{image}", "--mask", "{mask}", "--out", "{dir}/o.png"], "required: --class"),
    (["inpaint", "{image}", "--out", "{dir}/o.png"], "required: --mask"),
]


def bad_files(folder, good_png) -> dict:
    """Files that are not what they claim, made fresh for each case."""
    folder.mkdir()
    made = {"empty": folder / "empty.png", "text": folder / "text.png", "truncated": folder / "truncated.png",
            "folder": folder / "folder.png", "huge": folder / "huge.png", "pickle": folder / "model.pth"}
    made["empty"].write_bytes(b"")
    made["text"].write_bytes(b"hello, not an image")
    data = good_png.read_bytes()
    made["truncated"].write_bytes(data[: len(data) // 2])
    made["folder"].mkdir()
    made["huge"].write_bytes(png_header_only(60000, 60000))
    torch.save({"model": {}}, made["pickle"])
    return made


def png_header_only(width: int, height: int) -> bytes:
    """A tiny PNG file that claims a huge size (a decompression bomb's first bytes)."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64))
            + chunk(b"IEND", b""))


@pytest.mark.parametrize("args,message", BAD)
def test_bad_input_gives_one_line_and_writes_nothing(files, capsys, args, message):
    folder = files["dir"]
    Image.fromarray(np.zeros((10, 10), np.uint8)).save(folder / "small_mask.png")
    Image.fromarray(np.zeros((41, 57), np.uint8)).save(folder / "black_mask.png")
    (folder / "bad.safetensors").write_bytes(b"this is not a model")
    values = {"dir": folder, "image": files["image"], "mask": files["mask"],
              "small_mask": folder / "small_mask.png", "black_mask": folder / "black_mask.png",
              "bad_model": folder / "bad.safetensors", **bad_files(folder / "bad", files["image"])}
    before = pngs(folder)
    argv = [a.format(**values) for a in args]
    if "--model" not in argv:
        argv += ["--model", files["model"]]
    try:
        code = main([argv[0], *FAST, *argv[1:]])  # the case's own options come last and win
    except SystemExit as exit:  # a usage mistake: argparse exits, as the installed command does
        code = exit.code
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("fractal-studio: error: ") and err.count("\n") == 1, err
    assert message in err
    assert "Traceback" not in err
    assert pngs(folder) == before
    assert np.array_equal(np.asarray(Image.open(files["image"])), files["pixels"])  # source untouched
    assert np.array_equal(np.asarray(Image.open(files["mask"])) > 0, files["mask_array"])  # mask too


def test_overwrite_allows_replacing_the_source(files):
    assert cli(files, "inpaint", files["image"], "--mask", files["mask"], "--out", files["image"],
               "--overwrite") == 0
    assert read_png_metadata(files["image"])["task"] == "inpaint"


def test_unknown_class_suggests_close_matches():
    config = preset("small_mar_in32").with_classes(("tabby cat", "tiger", "tiger shark", "dog"))
    assert common.match_class(config, "TABBY CAT") == 0
    assert common.match_class(config, "tab") == 0
    assert common.match_class(config, "3") == 3
    assert common.match_class(config, "tiger") == 1  # exact beats prefix
    with pytest.raises(UserError, match="ambiguous.*'tiger'.*'tiger shark'"):
        common.match_class(config, "tig")
    with pytest.raises(UserError, match="did you mean 'tabby cat'"):
        common.match_class(config, "taby cat")
    with pytest.raises(UserError, match="out of range"):
        common.match_class(config, "4")
    assert common.match_class(config, None) is None
    unconditional = preset("small_mar_in32").with_classes(("only",))
    with pytest.raises(UserError, match="unconditional"):
        common.match_class(unconditional, "0")


def test_resolve_model_path(tmp_path, monkeypatch):
    model = tmp_path / "m.safetensors"
    model.write_bytes(b"x")
    assert common.resolve_model_path(str(model)) == model
    monkeypatch.setattr(common, "MODELS_DIR", tmp_path)
    assert common.resolve_model_path("m") == model
    with pytest.raises(UserError, match="bundled model 'photo_64' not found.*fractal-studio train"):
        common.resolve_model_path(None)
    with pytest.raises(UserError, match="model file not found"):
        common.resolve_model_path(str(tmp_path / "other.safetensors"))


def test_a_failed_save_of_several_candidates_keeps_the_files_that_were_there(files, capsys, monkeypatch):
    """Disk full while writing candidate 2 of 3: nothing new is written and the old res-1.png stays."""
    import fractal_studio.files as file_module

    folder = files["dir"]
    old = folder / "res-1.png"
    old.write_bytes(b"the user's earlier result")
    real_fdopen = file_module.os.fdopen
    opened = []

    def full_disk_on_the_second(fd, mode):
        handle = real_fdopen(fd, mode)
        opened.append(handle)
        if len(opened) == 2:
            handle.close()
            raise OSError(28, "No space left on device")
        return handle

    monkeypatch.setattr(file_module.os, "fdopen", full_disk_on_the_second)
    code = cli(files, "inpaint", files["image"], "--mask", files["mask"], "--out", folder / "res.png",
               "--candidates", "3")
    err = capsys.readouterr().err
    assert code == 2 and "no space left on device" in err and "nothing was written" in err
    assert old.read_bytes() == b"the user's earlier result"
    assert not (folder / "res-2.png").exists() and not (folder / "res-3.png").exists()
    assert not [p for p in folder.iterdir() if p.name.startswith(".")]  # no temporary file left


def test_convert_never_writes_over_a_file_it_reads(tmp_path, capsys):
    source = tmp_path / "model.safetensors"
    source.write_bytes(b"the user's checkpoint")
    names = tmp_path / "names.safetensors"
    names.write_text("cat\ndog\n")
    for argv in (["convert", str(source), str(source), "--force"],
                 ["convert", str(tmp_path / "missing.pth"), str(names), "--class-names", str(names),
                  "--force"]):
        assert main(argv) == 2
        assert "refusing to overwrite" in capsys.readouterr().err
    assert source.read_bytes() == b"the user's checkpoint" and names.read_text() == "cat\ndog\n"


def test_spread_is_applied_and_recorded(files):
    out = files["dir"] / "smooth.png"
    assert cli(files, "inpaint", files["image"], "--mask", files["mask"], "--out", out, "--spread", "0") == 0
    assert read_png_metadata(out)["spread"] == "0"
    rough = files["dir"] / "rough.png"
    assert cli(files, "inpaint", files["image"], "--mask", files["mask"], "--out", rough) == 0
    inside = files["mask_array"]
    smooth_pixels = np.asarray(Image.open(out).convert("RGB"))[inside].astype(float)
    rough_pixels = np.asarray(Image.open(rough).convert("RGB"))[inside].astype(float)
    assert smooth_pixels.std(0).mean() < rough_pixels.std(0).mean()  # medians vary less than samples


def test_several_candidates_are_written_best_first_with_their_bits(files, capsys):
    out = files["dir"] / "ranked.png"
    assert cli(files, "inpaint", files["image"], "--mask", files["mask"], "--out", out, "--candidates", "3",
               "--work-scale", "native") == 0
    written = [files["dir"] / f"ranked-{k}.png" for k in (1, 2, 3)]
    bits = [float(read_png_metadata(path)["fill_bits"]) for path in written]
    assert bits == sorted(bits)
    assert capsys.readouterr().out.split() == [str(path) for path in written]  # paths only, for scripts


def test_vary_detail_of_an_earlier_result(files, capsys):
    out = files["dir"] / "first.png"
    assert cli(files, "inpaint", files["image"], "--mask", files["mask"], "--out", out, "--candidates", "3",
               "--work-scale", "native") == 0
    chosen = files["dir"] / "first-2.png"
    varied = files["dir"] / "varied.png"
    again = files["dir"] / "again.png"
    for path in (varied, again):
        assert cli(files, "inpaint", files["image"], "--mask", files["mask"], "--out", path,
                   "--vary-detail-of", chosen, "--seed", "9") == 0
    before = np.asarray(Image.open(chosen).convert("RGB"))
    after = np.asarray(Image.open(varied).convert("RGB"))
    mask = files["mask_array"]
    assert np.array_equal(before[~mask], after[~mask]) and not np.array_equal(before[mask], after[mask])
    assert np.array_equal(after, np.asarray(Image.open(again).convert("RGB")))  # the detail seed decides
    record = read_png_metadata(varied)
    assert (record["varied_from"], record["candidate"], record["detail_seed"]) == ("first-2.png", "2/3", "9")
    capsys.readouterr()
    other_mask = files["dir"] / "other_mask.png"
    Image.fromarray(np.where(np.roll(mask, 3, axis=1), 255, 0).astype(np.uint8)).save(other_mask)
    assert cli(files, "inpaint", files["image"], "--mask", other_mask, "--out", files["dir"] / "x.png",
               "--vary-detail-of", chosen) == 2
    assert "another image or mask" in capsys.readouterr().err
    assert cli(files, "inpaint", files["image"], "--mask", files["mask"], "--out", files["dir"] / "y.png",
               "--vary-detail-of", files["image"]) == 2
    assert "no record" in capsys.readouterr().err


# A record is text anyone can write: each field is checked as the command's own options are.
HOSTILE_RECORDS = [
    ({"candidates": "1000000"}, "candidates in the record of first-2.png must be between 1 and 256"),
    ({"seed": "abc"}, "the record of first-2.png has a bad 'seed' field ('abc'): expected a whole number"),
    ({"seed": str(2**40)}, "seed in the record of first-2.png must be between 0 and 2**31 - 1"),
    ({"iterations": ""}, "bad 'iterations' field"),
    ({"iterations": "2,1,1"}, "give 2 iteration counts"),
    ({"candidate": "7/3"}, "bad 'candidate' field ('7/3')"),
    ({"candidate": "2/2"}, "bad 'candidate' field"),
    ({"class": "5000"}, "class 5000 is out of range"),
    ({"feather": "-4"}, "feather in the record of first-2.png must be between 0 and 256"),
]


@pytest.mark.parametrize("change,message", HOSTILE_RECORDS)
def test_vary_detail_of_a_hostile_record_is_refused_in_one_line_before_sampling(files, capsys, monkeypatch,
                                                                                 change, message):
    from fractal_studio.editing.imageio import save_png
    from fractal_studio.editing.session import EditSession

    assert cli(files, "inpaint", files["image"], "--mask", files["mask"], "--out", files["dir"] / "first.png",
               "--candidates", "3", "--work-scale", "native") == 0
    chosen = files["dir"] / "first-2.png"
    record = {**read_png_metadata(chosen), **change}
    save_png(chosen, np.asarray(Image.open(chosen).convert("RGB")), record)
    started = []
    monkeypatch.setattr(EditSession, "start_run", lambda self, options: started.append(options))
    capsys.readouterr()
    varied = files["dir"] / "varied.png"
    assert cli(files, "inpaint", files["image"], "--mask", files["mask"], "--out", varied,
               "--vary-detail-of", chosen) == 2
    err = capsys.readouterr().err
    assert err.startswith("fractal-studio: error: ") and err.count("\n") == 1, err
    assert message in err and not started and not varied.exists()
