"""`fractal-studio models list|get|remove` end to end (in-process), against a local server."""

from __future__ import annotations

import pytest
from PIL import Image

from fractal_studio.cli.main import main
from fractal_studio.model import download
from fractal_studio.model.weights import load_model

from ..checkpoint_server import CONFIG, DATA


@pytest.fixture
def folder(tmp_path, monkeypatch):
    monkeypatch.setattr(download, "CHUNK_BYTES", 64 * 1024)
    monkeypatch.setattr(download, "RETRY_WAIT_S", 0.0)
    monkeypatch.setenv(download.ENV_VAR, str(tmp_path / "models"))
    return tmp_path / "models"


def test_get_survives_a_dropped_connection_and_the_model_generates(server, folder, tmp_path, capsys):
    url = server.file("/checkpoint-last.pth", DATA, drop_at=len(DATA) // 3)
    assert main(["models", "get", url, "--config", CONFIG]) == 0
    out, err = capsys.readouterr()
    installed = folder / "checkpoint-last.safetensors"
    assert out == f"{installed}\n"
    assert "downloading checkpoint-last:" in err and "converting checkpoint-last" in err
    assert server.ranges("/checkpoint-last.pth") == [None, f"bytes={len(DATA) // 3}-"]
    assert load_model(installed).config.class_num == 10

    image = tmp_path / "generated.png"  # --model finds the installed model by its name
    assert main(["generate", "--model", "checkpoint-last", "--class", "0", "--iterations", "2,2", "--quiet",
                 "--out", str(image)]) == 0
    assert Image.open(image).size == (16, 16)


def test_list_shows_the_catalogue_what_is_installed_and_where(server, folder, capsys):
    url = server.file("/tiny.pth", DATA)
    assert main(["models", "get", url, "--config", CONFIG, "--quiet"]) == 0
    (folder / "partly.pth.part").write_bytes(b"x" * 2000)
    capsys.readouterr()
    assert main(["models", "list"]) == 0
    out = capsys.readouterr().out
    for title in ("FractalAR, 64×64", "FractalMAR-H, 256×256", "3.4 GB download", "850M parameters"):
        assert title in out
    assert f"Installed in {folder}" in out
    size = (folder / "tiny.safetensors").stat().st_size
    assert "tiny" in out and f"{folder / 'tiny.safetensors'}" in out and f"{size / 1000:.0f} kB" in out
    assert "partly" in out and "resumes it" in out


def test_quiet_get_prints_only_the_path(server, folder, capsys):
    url = server.file("/tiny.pth", DATA)
    assert main(["models", "get", url, "--config", CONFIG, "--name", "mine", "--quiet"]) == 0
    assert capsys.readouterr() == (f"{folder / 'mine.safetensors'}\n", "")


def test_remove_deletes_and_a_second_remove_is_one_error_line(server, folder, capsys):
    url = server.file("/tiny.pth", DATA)
    assert main(["models", "get", url, "--config", CONFIG, "--quiet", "--keep-checkpoint"]) == 0
    capsys.readouterr()
    assert main(["models", "remove", "tiny"]) == 0
    removed = capsys.readouterr().out
    assert removed == f"removed {folder / 'tiny.safetensors'}\nremoved {folder / 'tiny.pth'}\n"
    assert list(folder.iterdir()) == []
    assert main(["models", "remove", "tiny"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no model named 'tiny' is installed" in err


def test_a_failed_get_is_one_error_line(server, folder, capsys):
    assert main(["models", "get", server.url("/gone.pth"), "--config", CONFIG]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("fractal-studio: error: ") and "HTTP 404" in err


def test_an_uninstalled_published_model_says_how_to_get_it(folder, capsys, tmp_path):
    assert main(["generate", "--model", "fractalmar_huge_in256", "--out", str(tmp_path / "x.png")]) == 2
    err = capsys.readouterr().err
    assert "`fractal-studio models get fractalmar_huge_in256`" in err and err.count("\n") == 1
