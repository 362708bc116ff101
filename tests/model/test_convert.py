"""Converting the authors' checkpoints, from Python and from the command line."""

from __future__ import annotations

import pytest
import torch

from fractal_studio.cli.main import main
from fractal_studio.model.weights import load_model

from ..conftest import REFERENCE, TINY_REFERENCE_MODELS


@pytest.mark.parametrize("name", TINY_REFERENCE_MODELS)
def test_cli_convert_and_info(name, tmp_path, capsys):
    folder = REFERENCE / name
    out = tmp_path / f"{name}.safetensors"
    assert main(["convert", str(folder / "checkpoint-last.pth"), str(out),
                 "--config", str(folder / "config.json")]) == 0
    assert out.is_file()
    assert main(["info", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "sha256:" in printed and "parameters:" in printed and "level 0:" in printed
    state = torch.load(folder / "checkpoint-last.pth", weights_only=False)["model"]
    assert sum(v.numel() for v in state.values()) == sum(
        p.numel() for p in load_model(out).parameters())


def test_convert_refuses_to_overwrite_and_unknown_model(tmp_path, capsys):
    folder = REFERENCE / "toy_cols"
    out = tmp_path / "x.safetensors"
    out.write_text("keep me")
    assert main(["convert", str(folder / "checkpoint-last.pth"), str(out)]) == 2
    assert out.read_text() == "keep me"
    assert "already exists" in capsys.readouterr().err
    out.unlink()
    assert main(["convert", str(folder / "checkpoint-last.pth"), str(out)]) == 2
    assert "not a published preset" in capsys.readouterr().err
    assert not out.exists()


def test_convert_overwrite_replaces_the_file_and_the_old_force_still_works(tmp_path, capsys):
    folder = REFERENCE / "toy_cols"
    out = tmp_path / "x.safetensors"
    out.write_text("keep me")
    argv = ["convert", str(folder / "checkpoint-last.pth"), str(out), "--config", str(folder / "config.json")]
    assert main(argv) == 2
    assert "already exists; pass --overwrite to replace it" in capsys.readouterr().err
    for flag in ("--overwrite", "--force"):
        out.write_text("replace me")
        assert main([*argv, flag]) == 0, flag
        assert load_model(out).config.class_num == 3
    with pytest.raises(SystemExit):
        main(["convert", "--help"])
    shown = capsys.readouterr().out
    assert "--overwrite" in shown and "--force" not in shown  # one name, as in the other commands


def test_a_converted_file_and_a_saved_model_have_the_same_metadata(tmp_path, converted):
    from fractal_studio.model.weights import model_metadata, read_header, save_model

    _, from_convert = read_header(converted["toy_cols"])
    model = load_model(converted["toy_cols"])
    save_model(model, tmp_path / "saved.safetensors")
    _, from_save = read_header(tmp_path / "saved.safetensors")
    assert list(from_save) == ["format", "format_version", "config", "class_names"]
    assert {key: from_convert[key] for key in from_save} == from_save
    assert from_convert["converted_from"] == "checkpoint-last.pth"
    assert from_save == model_metadata(model.config)


def test_convert_reports_a_corrupt_checkpoint(tmp_path, capsys):
    bad = tmp_path / "bad.pth"
    bad.write_bytes(b"PK\x03\x04 definitely not a checkpoint")
    assert main(["convert", str(bad), str(tmp_path / "o.safetensors"), "--config", "tiny_mar_in16"]) == 2
    err = capsys.readouterr().err
    assert "bad.pth is not a readable PyTorch checkpoint" in err and "Traceback" not in err


def test_convert_with_the_wrong_config_names_mismatches(tmp_path, capsys):
    folder = REFERENCE / "tiny_fractalmar"
    code = main(["convert", str(folder / "checkpoint-last.pth"), str(tmp_path / "o.safetensors"),
                 "--config", "tiny_ar_in16"])
    assert code == 2
    err = capsys.readouterr().err
    assert "does not match configuration" in err and "unexpected 38 tensors" in err
    assert "levels.0.blocks.0.attention.wqkv.weight" in err


def test_checkpoint_args_choose_the_preset(tmp_path):
    """Without --config, the preset comes from the checkpoint's own args (model name, flags)."""
    import argparse

    from fractal_studio.model.convert import config_from_option

    args = argparse.Namespace(model="fractalmar_base_in256", num_conds=5, guiding_pixel=True, class_num=1000)
    config = config_from_option(None, args, tmp_path / "c.pth")
    assert config.name == "fractalmar_base_in256" and config.guiding_pixel and config.resolution == 256


def test_imagenet_models_get_the_imagenet_class_names():
    from fractal_studio.model.config import preset
    from fractal_studio.model.convert import IMAGENET_CLASSES_FILE, _class_names_for

    assert IMAGENET_CLASSES_FILE.is_file()
    names = _class_names_for(preset("tiny_mar_in16", class_num=1000), None)
    assert len(names) == 1000 and names[0] == "tench" and names[999] == "toilet tissue"
    assert _class_names_for(preset("tiny_mar_in16", class_num=10), None) == ()


def test_class_names_file_must_match_the_class_count(tmp_path):
    from fractal_studio.errors import UserError
    from fractal_studio.model.config import preset
    from fractal_studio.model.convert import _class_names_for

    names = tmp_path / "names.txt"
    names.write_text("cat\ndog\n")
    assert _class_names_for(preset("tiny_mar_in16", class_num=2), names) == ("cat", "dog")
    with pytest.raises(UserError, match="lists 2 class names but the model has 3"):
        _class_names_for(preset("tiny_mar_in16", class_num=3), names)


def _checkpoint_with_args(tmp_path, **args):
    import argparse

    folder = REFERENCE / "tiny_fractalmar"
    with torch.serialization.safe_globals([argparse.Namespace]):
        checkpoint = torch.load(folder / "checkpoint-last.pth", weights_only=True, map_location="cpu")
    old = vars(checkpoint.get("args") or argparse.Namespace())
    checkpoint["args"] = argparse.Namespace(**{**old, **args})
    path = tmp_path / "checkpoint.pth"
    torch.save(checkpoint, path)
    return path


@pytest.mark.parametrize(("config", "message"), [
    ("[1, 2, 3]", "do not describe a valid model"),
    ('{"img_size_list": [16, 0, 1], "embed_dim_list": [64, 32, 16], "num_blocks_list": [2, 1, 1], '
     '"num_heads_list": [4, 2, 2], "generator_type_list": ["mar", "mar", "mar"]}', "do not describe a valid"),
    ('{"name": "x", "levels": "none"}', "do not describe a valid model"),
])
def test_a_bad_config_file_is_one_clear_line(tmp_path, capsys, config, message):
    path = tmp_path / "config.json"
    path.write_text(config)
    out = tmp_path / "o.safetensors"
    code = main(["convert", str(REFERENCE / "tiny_fractalmar" / "checkpoint-last.pth"), str(out),
                 "--config", str(path)])
    err = capsys.readouterr().err
    assert code == 2 and message in err and err.count("\n") == 1 and "Traceback" not in err
    assert not out.exists()


@pytest.mark.parametrize("args", [dict(model="fractalmar_in64", class_num=0),
                                  dict(model="fractalmar_in64", num_conds=3),
                                  dict(model=["a", "list"])])
def test_bad_checkpoint_arguments_are_one_clear_line(tmp_path, capsys, args):
    path = _checkpoint_with_args(tmp_path, **args)
    out = tmp_path / "o.safetensors"
    code = main(["convert", str(path), str(out)])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "Traceback" not in err, err
    assert not out.exists()


def test_a_binary_class_names_file_is_one_clear_line(tmp_path, capsys):
    names = tmp_path / "names.txt"
    names.write_bytes(bytes(range(256)) * 4)
    code = main(["convert", str(REFERENCE / "tiny_fractalmar" / "checkpoint-last.pth"),
                 str(tmp_path / "o.safetensors"), "--config", "tiny_mar_in16", "--class-names", str(names)])
    err = capsys.readouterr().err
    assert code == 2 and "not a text file of class names" in err and err.count("\n") == 1
