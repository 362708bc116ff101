"""The entry point: a mistyped command is an error, never a GUI start."""

from __future__ import annotations

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
    assert "detail:      coarse to fine, finer scales at spread 0.3" in out
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
