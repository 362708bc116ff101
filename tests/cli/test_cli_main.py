"""The entry point: a mistyped command is an error, never a GUI start."""

from __future__ import annotations

import pytest

from fractal_studio.cli import main as entry


def test_a_typo_names_the_closest_command_and_does_not_start_the_app(capsys, monkeypatch):
    started = []
    monkeypatch.setattr("fractal_studio.cli.gui.run", lambda args: started.append(args) or 0)
    assert entry.main(["inpant", "photo.jpg"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "did you mean 'inpaint'?" in err and "commands: gui" in err
    assert not started


def test_an_existing_file_still_opens_in_the_app(tmp_path, monkeypatch):
    opened = []
    image = tmp_path / "photo.png"
    image.write_bytes(b"")
    monkeypatch.setattr("fractal_studio.app.main.launch", lambda image, model: opened.append(image) or 0)
    assert entry.main([str(image)]) == 0
    assert opened == [str(image)]


def test_sigterm_during_a_write_leaves_no_temporary_file(tmp_path, monkeypatch):
    import os
    import signal

    import pytest

    from fractal_studio.files import atomic_write

    previous = signal.getsignal(signal.SIGTERM)
    try:
        entry.stop_on_sigterm()
        target = tmp_path / "result.png"
        target.write_bytes(b"old")

        def killed_half_way(f):
            f.write(b"x" * 1000)
            os.kill(os.getpid(), signal.SIGTERM)

        with pytest.raises(entry.Terminated):
            atomic_write(target, killed_half_way)
        assert target.read_bytes() == b"old"
        assert [p.name for p in tmp_path.iterdir()] == ["result.png"]
    finally:
        signal.signal(signal.SIGTERM, previous)


def test_info_takes_a_model_name_like_model_does(capsys):
    assert entry.main(["info", "photo_64"]) == 0
    out = capsys.readouterr().out
    assert "photo_64.safetensors" in out and "name:        photo_mar_in64" in out
    assert "detail:      coarse to fine, finer scales at spread 0.6" in out
    assert entry.main(["info", "fractalmar_in64"]) == 2  # published, not installed: says how to get it
    assert "fractal-studio models get fractalmar_in64" in capsys.readouterr().err


def test_a_reader_that_goes_away_ends_the_command_quietly(monkeypatch, capsys):
    import sys

    from fractal_studio.cli import info

    def gone(args):  # what printing into `| head` gives once head has exited
        raise BrokenPipeError(32, "Broken pipe")

    monkeypatch.setattr(info, "run", gone)
    monkeypatch.setattr(sys, "stdout", sys.stdout)  # main points stdout at devnull afterwards
    assert entry.main(["info", "photo_64"]) == 141
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize("args,message", [
    (["surprise", "{image}", "--out", "{dir}/map.png", "--mask-out", "{dir}/m.png", "--threshold", "nan"],
     "--threshold must be a number"),
    (["surprise", "{image}", "--out", "{dir}/map.jpg"], "writes a PNG"),
    (["surprise", "{image}", "--out", "{dir}/map.png", "--mask-out", "{dir}/m.tif", "--threshold", "9"],
     "writes a PNG"),
    (["likelihood", "{image}", "--seed", str(2**70)], "--seed must be between"),
    (["generate", "--model", "fashion_mnist", "--class", "\u00b2", "--out", "{dir}/g.png"], "class"),
    (["train", "--data", "photos", "--preset", "photo_mar_in64", "--out", "{dir}/m.safetensors",
      "--steps", "5", "--eval-count", "0"], "--eval-count"),
])
def test_out_of_range_values_are_one_line_errors_and_write_nothing(tmp_path, capsys, args, message):
    import numpy as np
    from PIL import Image

    Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(tmp_path / "photo.png")
    argv = [a.format(image=tmp_path / "photo.png", dir=tmp_path) for a in args]
    assert entry.main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["photo.png"]
