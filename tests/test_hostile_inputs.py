"""Hostile inputs, second campaign (#33): each case is one line and exit 2, never a traceback, a
hang or a blow-up, and every file in the folder is exactly as it was (hashed before and after).

The table covers, for each kind of file a command reads or writes: an output that is an input by
another name, files that never end or block (/dev/zero, a FIFO), archives that inflate, JSON that
nests too deeply or holds a 5,000-digit number, names that are too long, loop or are not UTF-8.
Cases marked `before` must be refused before the model is even loaded.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import shutil
import struct
import zipfile
import zlib

import numpy as np
import pytest
import torch
from PIL import Image

from fractal_studio.cli import common
from fractal_studio.cli.main import main
from fractal_studio.model import FractalModel, preset
from fractal_studio.model.weights import save_model

DEEP = "[" * 100_000 + "]" * 100_000
DIGITS = "1" * 5000


# ------------------------------------------------------------------------------ the folder
@pytest.fixture
def world(tmp_path, monkeypatch):
    """A folder with a tiny model (also installed as 'mine'), an image, a mask, a config and a
    class-names file; the installed-models folder is the folder's models/."""
    installed = tmp_path / "installed"
    installed.mkdir()
    monkeypatch.setenv("FRACTAL_STUDIO_MODELS", str(installed))
    torch.manual_seed(0)
    save_model(FractalModel(preset("tiny_mar_in16")), tmp_path / "model.safetensors")
    (installed / "mine.safetensors").write_bytes((tmp_path / "model.safetensors").read_bytes())
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)).save(tmp_path / "image.png")
    mask = np.zeros((16, 16), np.uint8)
    mask[4:8, 4:8] = 255
    Image.fromarray(mask).save(tmp_path / "mask.png")
    (tmp_path / "config.json").write_text(preset("tiny_mar_in16").to_json())
    (tmp_path / "classes.txt").write_text("cat\ndog\n")
    torch.save({"model": FractalModel(preset("tiny_mar_in16")).state_dict()}, tmp_path / "ckpt.pth")
    os.mkfifo(tmp_path / "fifo")
    return tmp_path


def snapshot(folder) -> dict[str, str]:
    """Every entry under `folder`: a regular file's hash, a link's target, other kinds by type."""
    found = {}
    for root, dirs, names in os.walk(folder):
        for name in names + dirs:
            path = os.path.join(root, name)
            if os.path.islink(path):
                found[path] = "-> " + os.readlink(path)
            elif os.path.isfile(path):
                with open(path, "rb") as file:
                    found[path] = hashlib.sha256(file.read()).hexdigest()
            else:
                found[path] = "dir" if os.path.isdir(path) else "other"
    return found


# --------------------------------------------------------------------------- hostile files
def safetensors_with(world, name, change) -> str:
    """A copy of the model whose header JSON text went through `change`."""
    raw = (world / "model.safetensors").read_bytes()
    (length,) = struct.unpack("<Q", raw[:8])
    text = change(raw[8:8 + length].decode())
    path = world / name
    path.write_bytes(struct.pack("<Q", len(text.encode())) + text.encode() + raw[8 + length:])
    return str(path)


def with_metadata(key, value):
    def change(text):
        header = json.loads(text)
        header["__metadata__"][key] = value
        return json.dumps(header)
    return change


def with_key(value: str):
    """A header with one more key whose value is the JSON text `value` (the header ends in padding)."""
    return lambda text: text.rstrip()[:-1] + ', "x": ' + value + "}"


def with_tensors(change):
    """A header change that edits the table of tensors (name -> dtype, shape, data_offsets)."""
    def edit_header(text):
        header = json.loads(text)
        change(header)
        return json.dumps(header)
    return edit_header


def renamed(old_part: str, new_part: str):
    """The first tensor whose name holds `old_part` renamed with `new_part` in its place."""
    def change(header):
        name = next(k for k in header if old_part in k)
        header[name.replace(old_part, new_part)] = header.pop(name)
    return change


def extra_copy(name: str):
    """One more tensor `name`: a copy of the first tensor's entry (its data is the same bytes)."""
    def change(header):
        first = next(k for k in header if k != "__metadata__")
        header[name] = dict(header[first])
    return change


def reshaped(header):
    """The first 2-D tensor transposed in the header: the same bytes, the wrong shape."""
    name = next(k for k, v in header.items() if k != "__metadata__" and len(v["shape"]) == 2
                and v["shape"][0] != v["shape"][1])
    header[name]["shape"] = header[name]["shape"][::-1]


def retyped(header):
    """The first F32 tensor said to hold I32 numbers (the same bytes)."""
    name = next(k for k, v in header.items() if k != "__metadata__" and v["dtype"] == "F32")
    header[name]["dtype"] = "I32"


def deep_config(text):
    header = json.loads(text)
    header["__metadata__"]["config"] = header["__metadata__"]["config"][:-1] + ', "x": ' + DEEP + "}"
    return json.dumps(header)


def link(world, name, target) -> str:
    os.symlink(target, world / name)
    return str(world / name)


def hard_link(world, name, target) -> str:
    os.link(world / target, world / name)
    return str(world / name)


def loop(world, name) -> str:
    os.symlink(world / (name + ".other"), world / name)
    os.symlink(world / name, world / (name + ".other"))
    return str(world / name)


def not_utf8(world, name) -> str:
    path = os.fsdecode(os.fsencode(str(world)) + b"/" + name.encode() + b"\xff.png")
    with open(path, "wb") as file:
        file.write((world / "image.png").read_bytes())
    return path


def long_name(world, suffix=".png") -> str:
    return os.path.join(str(world), "a" * 300 + suffix)


def compressed_state(world) -> str:
    """A training state whose entries are deflated (torch.save never writes that): could inflate."""
    plain = world / "plain.state.pt"
    torch.save({"step": 1, "weights": torch.zeros(1000)}, plain)
    path = world / "out.state.pt"
    with zipfile.ZipFile(plain) as source, zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as target:
        for entry in source.infolist():
            target.writestr(entry.filename, source.read(entry))
    plain.unlink()
    return str(path)


def png_with_chunk(world, name, key: bytes, value: bytes) -> str:
    buffer = io.BytesIO()
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(buffer, format="PNG")
    raw = buffer.getvalue()
    body = key + b"\0" + value
    chunk = struct.pack(">I", len(body)) + b"tEXt" + body + struct.pack(">I", zlib.crc32(b"tEXt" + body))
    (world / name).write_bytes(raw[:33] + chunk + raw[33:])
    return str(world / name)


def short_jpeg(world, name="short.jpg") -> str:
    """A JPEG whose header says 16×16 but whose scan holds an 8×8 image (it ends properly): libjpeg
    decodes it as three quarters flat grey, without an error."""
    buffer = io.BytesIO()
    pixels = np.random.default_rng(1).integers(0, 256, (8, 8, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(buffer, "JPEG", subsampling=0)  # one 8×8 block of 4 a 16×16 image needs
    data = buffer.getvalue()
    at = data.index(b"\xff\xc0")
    (world / name).write_bytes(data[:at + 5] + struct.pack(">HH", 16, 16) + data[at + 9:])
    return str(world / name)


def cut_png(world, name="cut.png") -> str:
    data = (world / "image.png").read_bytes()
    (world / name).write_bytes(data[:len(data) // 2])
    return str(world / name)


def edit(image="{image}", mask="{mask}", model="{model}", out="{dir}/o.png", *more) -> list[str]:
    return ["inpaint", image, "--mask", mask, "--model", model, "--out", out, "--quiet", *more]


def train(out="{dir}/t.safetensors", *more) -> list[str]:
    return ["train", "--data", "{dir}", "--preset", "tiny_mar_in16", "--steps", "1", "--out", out, *more]


def convert(*more, src="{dir}/ckpt.pth") -> list[str]:
    return ["convert", src, "{dir}/d.safetensors", *more]


def surprise(*more) -> list[str]:
    return ["surprise", "{image}", "--model", "{model}", *more]


def surprise_of(image, *more) -> list[str]:
    return ["surprise", image, "--model", "{model}", *more]


def writes(name, text):
    def make(world):
        (world / name).write_text(text)
        return str(world / name)
    return make


def model_with(name, change):
    return lambda world: safetensors_with(world, name, change)


def linked(name, target):
    return lambda world: link(world, name, world / target)


LOOP = "loop of symbolic links"
IRREGULAR = "not a regular file"
DEEP_MESSAGE = "more than 64 levels deep"
X = "{x}"

# name: (argv with {placeholders}, a function of the folder giving {x} or None, message, before)
CASES = {
    # An output that is an input, by another name.
    "out is a link to the model": (edit(out=X), linked("l.png", "model.safetensors"),
                                   "the --model file this command reads", True),
    "out is a link to an installed model named by name": (
        edit(model="mine", out=X), linked("l.png", "installed/mine.safetensors"), "the --model file", True),
    "out is a hard link of the mask": (edit(out=X), lambda w: hard_link(w, "h.png", "mask.png"),
                                       "the --mask file", True),
    "out is a link to the image": (edit(out=X), linked("l.png", "image.png"),
                                   "refusing to overwrite the source image", True),
    "out is the result it varies": (edit("{image}", "{mask}", "{model}", X, "--vary-detail-of", X),
                                    lambda w: str(shutil.copy(w / "image.png", w / "r.png")),
                                    "the --vary-detail-of file", True),
    "surprise out is the model": (surprise("--out", "{model}"), None, "--out writes a PNG", True),
    "surprise out is a link to the model": (surprise("--out", X), linked("m.png", "model.safetensors"),
                                            "the --model file", True),
    "surprise out and mask-out are one file": (
        surprise("--out", "{dir}/s.png", "--mask-out", "{dir}/s.png", "--threshold", "9"), None,
        "each output needs a file of its own", True),
    "convert dst is a link to the checkpoint": (
        ["convert", "{dir}/ckpt.pth", X, "--config", "tiny_mar_in16", "--overwrite"],
        linked("d.safetensors", "ckpt.pth"), "the checkpoint file", True),
    "convert dst is a link to the config": (
        ["convert", "{dir}/ckpt.pth", X, "--config", "{dir}/config.json", "--overwrite"],
        linked("d.safetensors", "config.json"), "the --config file", True),
    "train out is a link to the init model": (train(X, "--init-from", "{model}"),
                                              linked("t.safetensors", "model.safetensors"),
                                              "the --init-from file", True),
    "train state is a link to the class names": (
        train("{dir}/t.safetensors", "--class-names", "{dir}/classes.txt"),
        linked("t.state.pt", "classes.txt"),
        "the --class-names file", True),
    # Files that never end or block, archives that inflate.
    "image is a FIFO": (edit("{dir}/fifo"), None, IRREGULAR, True),
    "mask is /dev/zero": (edit(mask="/dev/zero"), None, IRREGULAR, True),
    "model is a FIFO": (edit(model="{dir}/fifo"), None, IRREGULAR, True),
    "info on a FIFO model": (["info", "{dir}/fifo"], None, IRREGULAR, True),
    "config is /dev/zero": (convert("--config", "/dev/zero"), None, IRREGULAR, True),
    "config is a FIFO": (convert("--config", "{dir}/fifo"), None, IRREGULAR, True),
    "class names are /dev/zero": (convert("--config", "tiny_mar_in16", "--class-names", "/dev/zero"), None,
                                  IRREGULAR, True),
    "train class names are a FIFO": (train("{dir}/t.safetensors", "--class-names", "{dir}/fifo"), None,
                                     IRREGULAR, True),
    "a PNG record is a FIFO": (edit("{image}", "{mask}", "{model}", "{dir}/o.png", "--vary-detail-of",
                                    "{dir}/fifo"), None, IRREGULAR, False),
    "resume state that inflates": (train("{dir}/out.safetensors", "--resume"), compressed_state,
                                   "holds compressed entries", True),
    "checkpoint that inflates": (convert("--config", "tiny_mar_in16", src=X), compressed_state,
                                 "holds compressed entries", True),
    # Structure not validated.
    "header nested 100,000 deep": (["info", X], model_with("deep.safetensors", with_key(DEEP)), DEEP_MESSAGE,
                                   True),
    "header with a 5,000-digit number": (["info", X], model_with("digits.safetensors", with_key(DIGITS)),
                                         "5000 digits", True),
    "configuration nested 100,000 deep": (edit(model=X), model_with("c.safetensors", deep_config),
                                          DEEP_MESSAGE, False),
    "class names are a string": (["info", X], model_with("s.safetensors",
                                                         with_metadata("class_names", json.dumps("abc"))),
                                 "must be a list of strings", True),
    "config.json nested deep": (convert("--config", X), writes("deep.json", DEEP), DEEP_MESSAGE, True),
    "config.json with a 5,000-digit number": (convert("--config", X),
                                              writes("n.json", '{"class_num": ' + DIGITS + "}"),
                                              "5000 digits", True),
    # Tensors a model file should not have (info read the names as level numbers).
    "info on a tensor whose level is not a number": (
        ["info", X], model_with("t.safetensors", with_tensors(extra_copy("levels.x.weight"))),
        "does not match configuration 'tiny_mar_in16': unexpected 1 tensors: levels.x.weight", True),
    "info on a tensor named levels": (
        ["info", X], model_with("t.safetensors", with_tensors(extra_copy("levels"))),
        "unexpected 1 tensors: levels;", True),
    "info on a tensor of a level the model does not have": (
        ["info", X], model_with("t.safetensors", with_tensors(renamed("levels.0.", "levels.7."))),
        "missing 1 tensors: levels.0.", True),
    "info on a tensor of the wrong shape": (["info", X], model_with("t.safetensors", with_tensors(reshaped)),
                                            "1 tensors with the wrong shape: ", True),
    "edit with a model holding integer tensors": (
        edit(model=X), model_with("t.safetensors", with_tensors(retyped)),
        "holds I32 tensors; this program reads weights stored as F32 or BF16", False),
    "info on a tensor name with escape sequences": (
        ["info", X], model_with("t.safetensors", with_tensors(extra_copy("\x1b]0;owned\x07w" + "x" * 500))),
        "unexpected 1 tensors: wxxx", True),
    "edit with a model holding an unexpected tensor": (
        edit(model=X), model_with("t.safetensors", with_tensors(extra_copy("levels.x.weight"))),
        "unexpected 1 tensors: levels.x.weight", False),
    # Truncated data taken as an image.
    "image is a JPEG whose data stops early": (edit(X), short_jpeg,
                                               "its image data ends before the 16×16 pixels", True),
    "image is a PNG cut in half": (edit(X), cut_png, "is damaged or incomplete (image file is truncated",
                                   True),
    "mask is a JPEG whose data stops early": (edit(mask=X), short_jpeg, "its image data ends before", True),
    "surprise on a JPEG whose data stops early": (surprise_of(X, "--out", "{dir}/s.png"), short_jpeg,
                                                  "its image data ends before the 16×16 pixels", True),
    "likelihood on a JPEG whose data stops early": (["likelihood", X, "--model", "{model}"], short_jpeg,
                                                    "its image data ends before the 16×16 pixels", True),
    "likelihood on a PNG cut in half": (["likelihood", X, "--model", "{model}"], cut_png,
                                        "is damaged or incomplete", True),
    # Values: option values that are not numbers, or past any sensible bound (each is one message,
    # before the model loads).
    "class that isdigit but is not a number": (edit("{image}", "{mask}", "{model}", "{dir}/o.png",
                                                    "--class", "²"), None, "--class", False),
    "seed past 2**31": (edit("{image}", "{mask}", "{model}", "{dir}/o.png", "--seed", str(2**70)), None,
                        "--seed must be between 0 and 2**31 - 1", True),
    "likelihood seed past 64 bits": (["likelihood", "{image}", "--model", "{model}", "--seed", str(2**70)],
                                     None, "--seed must be between", True),
    "likelihood orders 0": (["likelihood", "{image}", "--model", "{model}", "--orders", "0"], None,
                            "--orders must be between 1 and 10000", True),
    "cfg nan": (edit("{image}", "{mask}", "{model}", "{dir}/o.png", "--cfg", "nan"), None,
                "--cfg must be between", True),
    "temperature inf": (edit("{image}", "{mask}", "{model}", "{dir}/o.png", "--temperature", "inf"), None,
                        "--temperature must be between", True),
    "candidates a huge whole number": (edit("{image}", "{mask}", "{model}", "{dir}/o.png", "--candidates",
                                            "9" * 30), None, "--candidates must be between", True),
    "threads a huge whole number": (edit("{image}", "{mask}", "{model}", "{dir}/o.png", "--threads",
                                         "9" * 30), None, "--threads must be between 1 and 1024", False),
    "uncrop scale 1e308": (["uncrop", "{image}", "--scale", "1e308", "--model", "{model}", "--out",
                            "{dir}/o.png"], None, "--scale must be greater than 1 and at most 100", True),
    "outpaint extend a huge whole number": (["outpaint", "{image}", "--extend", "0,0," + "9" * 30 + ",0",
                                             "--model", "{model}", "--out", "{dir}/o.png"], None,
                                            "results are limited to", True),
    "batch uncrop nan": (["batch", "--images", "{dir}", "--uncrop", "nan", "--model", "{model}", "--out",
                          "{dir}/b"], None, "--scale must be greater than 1", True),
    "surprise threshold nan": (surprise("--out", "{dir}/s.png", "--threshold", "nan"), None, "--threshold",
                               True),
    "surprise out is a JPEG": (surprise("--out", "{dir}/s.jpg"), None, "--out writes a PNG", True),
    "train eval count 0": (train("{dir}/t.safetensors", "--eval-count", "0"), None, "--eval-count must be",
                           True),
    "train checkpoint minutes nan": (train("{dir}/t.safetensors", "--checkpoint-minutes", "nan"), None,
                                     "--checkpoint-minutes must be", True),
    "train eval every negative": (train("{dir}/t.safetensors", "--eval-every", "-1"), None,
                                  "--eval-every must be", True),
    "train workers a huge whole number": (train("{dir}/t.safetensors", "--workers", "9" * 30), None,
                                          "--workers must be", True),
    "train batch size a huge whole number": (train("{dir}/t.safetensors", "--batch-size", "9" * 30), None,
                                             "--batch-size must be", True),
    "train steps a huge whole number": (["train", "--data", "{dir}", "--preset", "tiny_mar_in16", "--steps",
                                         "9" * 30, "--out", "{dir}/t.safetensors"], None, "--steps must be",
                                        True),
    "train minutes inf": (["train", "--data", "{dir}", "--preset", "tiny_mar_in16", "--minutes", "inf",
                           "--out", "{dir}/t.safetensors"], None, "--minutes must be", True),
    "train lr nan": (train("{dir}/t.safetensors", "--lr", "nan"), None, "--lr must be", True),
    "train warmup 1e308": (train("{dir}/t.safetensors", "--warmup", "1e308"), None, "--warmup must be",
                           True),
    "serve queue 0": (["serve", "--model", "{model}", "--queue", "0"], None, "--queue", True),
    "serve request size nan": (["serve", "--model", "{model}", "--max-request-mb", "nan"], None,
                               "--max-request-mb", True),
    "serve port past 65535": (["serve", "--model", "{model}", "--port", "70000"], None, "--port", True),
    # Paths.
    "image name over 255 bytes": (edit(long_name("{dir}")), None, "over 255 bytes", True),
    "out name over 255 bytes": (edit(out=long_name("{dir}")), None, "over 255 bytes", True),
    "model name over 255 bytes": (edit(model=long_name("{dir}", ".safetensors")), None, "over 255 bytes",
                                  True),
    "image is a link loop": (edit(X), lambda w: loop(w, "i.png"), LOOP, True),
    "mask is a link loop": (edit(mask=X), lambda w: loop(w, "m.png"), LOOP, True),
    "out is a link loop": (edit(out=X), lambda w: loop(w, "o.png"), LOOP, True),
    "model is a link loop": (edit(model=X), lambda w: loop(w, "m.safetensors"), LOOP, True),
    "image name not UTF-8": (edit(X), lambda w: not_utf8(w, "i"), "not valid UTF-8", True),
    "out name not UTF-8": (edit(out=X), lambda w: not_utf8(w, "o"), "not valid UTF-8", True),
    "surprise out is a link loop": (surprise("--out", X), lambda w: loop(w, "s.png"), LOOP, True),
    "train out is a link loop": (train(X), lambda w: loop(w, "t.safetensors"), LOOP, True),
}


@pytest.mark.parametrize("case", list(CASES))
def test_a_hostile_input_is_one_line_and_changes_nothing(case, world, capsys, monkeypatch):
    argv, make, message, before = CASES[case]
    extra = {"x": make(world)} if make is not None else {}
    if before:  # refused before the model is loaded: a bad name costs no run
        def no_model(*args, **kwargs):
            raise AssertionError("the model was loaded before the input was refused")
        monkeypatch.setattr(common, "load_model_file", no_model)
    values = {"dir": str(world), "image": str(world / "image.png"), "mask": str(world / "mask.png"),
              "model": str(world / "model.safetensors"), **extra}
    argv = [part.format(**values) for part in argv]
    monkeypatch.chdir(world)
    files = snapshot(world)
    code = main(argv)
    captured = capsys.readouterr()
    assert code == 2, (case, captured.err)
    assert captured.err.startswith("fractal-studio: error: ") and captured.err.count("\n") == 1, captured.err
    assert message in captured.err, captured.err
    assert "\x1b" not in captured.err
    assert snapshot(world) == files, "a file was written or changed"


# ------------------------------------------------------------------------------ terminal text
ESCAPES = b"\x1b]0;owned\x07\x1b[2J\x1b[31mred\x9b1m"


def test_info_prints_no_escape_sequence_from_a_png(world, capsys):
    path = png_with_chunk(world, "t.png", b"Comment", ESCAPES + b" done")
    assert main(["info", path]) == 0
    out = capsys.readouterr().out
    assert "Comment: red" in out and "done" in out
    assert not any(c in out for c in "\x1b\x07\x9b")


def test_info_prints_no_escape_sequence_from_a_model(world, capsys):
    def rename(text):
        header = json.loads(text)
        config = json.loads(header["__metadata__"]["config"])
        config["name"] = "\x1b]0;owned\x07tiny\x1b[2J"
        header["__metadata__"]["config"] = json.dumps(config)
        header["__metadata__"]["converted_from"] = "\x1b[31mx.pth"
        return json.dumps(header)
    path = safetensors_with(world, "named.safetensors", rename)
    assert main(["info", path]) == 0
    out = capsys.readouterr().out
    assert "name:        tiny (converted from x.pth)" in out
    assert "\x1b" not in out and "\x07" not in out


def test_a_png_record_nested_deep_is_ignored_not_a_traceback(world, capsys):
    path = png_with_chunk(world, "deep.png", b"fractal-studio", DEEP.encode())
    assert main(["info", path]) == 0
    assert "no fractal-studio generation record" in capsys.readouterr().out


def test_printable_keeps_text_and_drops_control():
    from fractal_studio.untrusted import printable

    assert printable("tabby cat") == "tabby cat"
    assert printable("a\x1b[2Jb\nc\u202ed\udcff") == "ab\\nc\\u202ed\\udcff"


# ------------------------------------------------------------------------ caches and the app
@pytest.mark.parametrize("content", ["fifo", "deep", "digits", "huge", "list"])
def test_a_broken_precision_cache_is_measured_again_and_rewritten(content, tmp_path, monkeypatch, capsys):
    from fractal_studio.sampling import precision

    monkeypatch.setenv(precision.CACHE_ENV, str(tmp_path))
    monkeypatch.setattr(precision, "cpu_bf16_kind", lambda: "amx")
    monkeypatch.setattr(precision, "probe_seconds", lambda model, rows=1: (1.0, 2.0))
    monkeypatch.setattr(precision, "_decided", {})
    monkeypatch.setattr(precision, "MAX_JSON_BYTES", 1 << 20)
    cache = tmp_path / "precision.json"
    if content == "fifo":
        os.mkfifo(cache)
    else:
        cache.write_text({"deep": DEEP, "digits": '{"a": ' + DIGITS + "}", "huge": " " * (2 << 20),
                          "list": "[1, 2]"}[content])
    model = FractalModel(preset("tiny_mar_in16"))
    assert precision.sampling_precision(model, torch.device("cpu"), "auto") == "fp32"
    assert json.loads(cache.read_text())  # rewritten with the measurement
    assert capsys.readouterr().err.count("\n") <= 1


def npz_bytes(**arrays) -> bytes:
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    return buffer.getvalue()


def lying_npz(path) -> None:
    """An .npz whose array header claims 10^12 bytes (np.load would allocate them)."""
    header = b"{'descr': '|u1', 'fortran_order': False, 'shape': (1000000, 1000000), }"
    header += b" " * (63 - (10 + len(header)) % 64) + b"\n"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("image.npy", b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header
                         + b"\0" * 16)


@pytest.mark.parametrize("damage", ["json fifo", "json deep", "json digits", "npz fifo", "npz lies",
                                    "npz bomb"])
def test_a_hostile_autosave_is_damaged_not_a_hang(damage, tmp_path, monkeypatch):
    from fractal_studio.app import autosave as module

    saved = module.Autosave(tmp_path)
    image = np.zeros((8, 8, 3), np.uint8)
    saved.save(image, np.zeros((8, 8), bool), None, {"params": {}})
    npz, info = tmp_path / module.SESSION_NPZ, tmp_path / module.SESSION_JSON
    kind, what = damage.split()
    target = info if kind == "json" else npz
    target.unlink()
    if what == "fifo":
        os.mkfifo(target)
    elif what == "deep":
        target.write_text(DEEP)
    elif what == "digits":
        target.write_text('{"a": ' + DIGITS + "}")
    elif what == "lies":
        lying_npz(target)
    else:  # 64 MB of zeros in a few KB, over a cap lowered for the test
        monkeypatch.setattr(module, "MAX_AUTOSAVE_BYTES", 16 << 20)
        target.write_bytes(npz_bytes(image=np.zeros((64 << 20,), np.uint8)))
    files = snapshot(tmp_path)
    with pytest.raises(module.DamagedAutosave) as error:
        module.Autosave(tmp_path).load()
    assert "\n" not in str(error.value)
    assert snapshot(tmp_path) == files


# ---------------------------------------------------------------------------- training data
def idx(array: np.ndarray) -> bytes:
    return b"\0\0\x08" + bytes([array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape) + array.tobytes()


IMAGES = np.full((4, 28, 28), 7, np.uint8)
LABELS = np.arange(4, dtype=np.uint8)

# damage: (the images file's bytes, the labels file's bytes, what the message says)
FASHION_MNIST_DAMAGE = {
    "bomb": (gzip.compress(b"\0\0\x08\x03" + bytes(32 << 20)), None, "inflates to more than 8 MiB"),
    "fifo": ("fifo", None, "not a regular file"),
    "not gzip": (b"\0\0\x08\x03 not gzip", None, "is not a valid gzip file"),
    "truncated gzip": (gzip.compress(idx(IMAGES))[:-20], None, "is truncated"),
    "empty": (gzip.compress(b""), None, "is not an idx file of unsigned bytes (it starts with nothing)"),
    "wrong magic": (gzip.compress(b"\0\0\x0d\x03" + idx(IMAGES)[4:]), None,
                    "is not an idx file of unsigned bytes (it starts with 00 00 0d 03)"),
    "short header": (gzip.compress(b"\0\0\x08\x03\0\0"), None,
                     "its header is cut short or names 3 dimensions"),
    "truncated data": (gzip.compress(idx(IMAGES)[:-100]), None,
                       "it holds 3036 values, but its header announces 4×28×28 = 3136"),
    "count larger than the data": (
        gzip.compress(idx(IMAGES)[:4] + struct.pack(">I", 10**6) + idx(IMAGES)[8:]), None,
        "its header announces 1000000×28×28 = 784000000"),
    "flat images": (gzip.compress(idx(IMAGES.reshape(4, 784))), None,
                    "images of shape 784, not Fashion-MNIST's"),
    "images of another size": (gzip.compress(idx(np.zeros((4, 300, 300), np.uint8))), None,
                               "images of shape 300×300, not Fashion-MNIST's 28×28"),
    "no images": (gzip.compress(idx(IMAGES[:0])), gzip.compress(idx(LABELS[:0])), "holds no images"),
    "labels past the classes": (None, gzip.compress(idx(LABELS + 200)),
                                "holds label 203; Fashion-MNIST's are 0 to 9"),
    "labels of two dimensions": (None, gzip.compress(idx(LABELS.reshape(2, 2))), "2-dimensional labels"),
    "fewer labels than images": (None, gzip.compress(idx(LABELS[:3])), "holds 4 images but "),
}


def write_fashion_mnist(folder, damage) -> None:
    """The two files of the train split, one of them damaged as `damage` says."""
    images, labels, _ = FASHION_MNIST_DAMAGE[damage]
    folder.mkdir(parents=True, exist_ok=True)
    for name, data, good in (("train-images-idx3-ubyte.gz", images, idx(IMAGES)),
                             ("train-labels-idx1-ubyte.gz", labels, idx(LABELS))):
        if data == "fifo":
            os.mkfifo(folder / name)
        else:
            (folder / name).write_bytes(gzip.compress(good) if data is None else data)


@pytest.mark.parametrize("damage", list(FASHION_MNIST_DAMAGE))
def test_hostile_fashion_mnist_files_are_one_clear_error(damage, tmp_path, monkeypatch):
    from fractal_studio.training.data import fashion_mnist
    from fractal_studio.training.sources import DataSourceError

    monkeypatch.setattr("fractal_studio.untrusted.MAX_GZIP_INFLATED_BYTES", 8 << 20)
    write_fashion_mnist(tmp_path, damage)
    files = snapshot(tmp_path)
    with pytest.raises(DataSourceError) as error:
        fashion_mnist("train", root=tmp_path, download=False)
    message = str(error.value)
    assert "\n" not in message and FASHION_MNIST_DAMAGE[damage][2] in message, message
    if damage != "fifo":
        assert "with Fashion-MNIST's original file" in message, message
    assert snapshot(tmp_path) == files


@pytest.mark.parametrize("damage", ["labels past the classes", "images of another size", "wrong magic"])
def test_train_on_damaged_fashion_mnist_is_one_line_before_any_step(damage, tmp_path, capsys):
    """Through the command, from the data cache: labels past the classes and images of another size
    ended in a traceback in the first step, after the model was built."""
    from fractal_studio.training.sources import FASHION_MNIST_FILES, PACKAGES, package_dir

    package, path = FASHION_MNIST_FILES[0]
    root = package_dir(package, tmp_path / "cache")
    for name in PACKAGES[package].licence_files:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text("licence")
    folder = root / os.path.dirname(path)
    write_fashion_mnist(folder, damage)
    for name in ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"):
        shutil.copy(folder / name.replace("t10k", "train"), folder / name)
    files = snapshot(tmp_path)
    code = main(["train", "--data", "fashion-mnist", "--data-cache", str(tmp_path / "cache"), "--preset",
                 "small_mar_in32", "--out", str(tmp_path / "f.safetensors"), "--steps", "1", "--batch-size",
                 "2", "--eval-count", "2", "--device", "cpu"])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    last = err.strip().splitlines()[-1]
    assert last.startswith("fractal-studio: error: ") and FASHION_MNIST_DAMAGE[damage][2] in last, err
    assert last.endswith("and run the command again: Fashion-MNIST is fetched anew")
    assert "step 1" not in err
    assert snapshot(tmp_path) == files
