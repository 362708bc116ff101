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
