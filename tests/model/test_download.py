"""Installing models in one step (model/download.py) against a local server: resuming, restarting,
redirects, and every failure as one line that leaves nothing half-written but a resumable .part."""

from __future__ import annotations

import errno
import shutil
import socket
import threading
from collections import namedtuple
from dataclasses import replace

import pytest

from fractal_studio.errors import UserError
from fractal_studio.model import download, published
from fractal_studio.model.catalog import available_models, resolve_model
from fractal_studio.model.download import DownloadCancelled, DownloadProgress, get_model

from ..checkpoint_server import CONFIG, DATA

HALF = len(DATA) // 2


@pytest.fixture(autouse=True)
def fast(monkeypatch, tmp_path):
    """Small chunks (so a cancel or a drop lands mid-file), no waits between retries, every progress
    event reported, and the models folder in tmp_path."""
    monkeypatch.setattr(download, "CHUNK_BYTES", 64 * 1024)
    monkeypatch.setattr(download, "RETRY_WAIT_S", 0.0)
    monkeypatch.setattr(download, "PROGRESS_INTERVAL_S", 0.0)
    monkeypatch.setenv(download.ENV_VAR, str(tmp_path / "models"))


def models(tmp_path):
    return tmp_path / "models"


def files_in(folder):
    return sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []


def one_line(error) -> str:
    text = str(error.value)
    assert "\n" not in text and text
    return text


def sample_tiny(path):
    from fractal_studio.model.weights import load_model
    from fractal_studio.sampling import SampleRequest, sample_all

    model = load_model(path)
    result = sample_all(model, SampleRequest.generate(16, iterations=(2, 2), class_id=0, seed=1))
    assert result.candidates[0].shape == (16, 16, 3)


# ----------------------------------------------------------------------------------- success
def test_get_downloads_converts_and_the_model_loads_and_samples(server, tmp_path):
    url = server.file("/tiny_fractalmar.pth", DATA)
    events: list[DownloadProgress] = []
    path = get_model(url, config=CONFIG, progress=events.append)
    assert path == models(tmp_path) / "tiny_fractalmar.safetensors"
    assert files_in(models(tmp_path)) == ["tiny_fractalmar.safetensors"]  # the checkpoint is gone
    sample_tiny(path)
    downloads = [e for e in events if e.stage == "download"]
    assert downloads[-1].done == downloads[-1].total == len(DATA) and downloads[-1].fraction == 1
    assert [e.stage for e in events[-2:]] == ["convert", "convert"] and events[-1].done == path.stat().st_size
    assert get_model(url, config=CONFIG) == path and len(server.requests) == 1  # installed: no download


def test_a_published_name_installs_under_that_name_and_resolves_as_model(server, tmp_path, monkeypatch):
    url = server.file("/checkpoint-last.pth", DATA)
    entry = replace(published.PUBLISHED["fractalmar_in64"], url=url, download_bytes=len(DATA), parameters=1,
                    preset=CONFIG)  # the tiny fixture stands in for the published file
    monkeypatch.setitem(published.PUBLISHED, "fractalmar_in64", entry)
    with pytest.raises(UserError, match=r"'fractalmar_in64' is not installed; download it .* with "
                                        r"`fractal-studio models get fractalmar_in64`"):
        resolve_model("fractalmar_in64")
    path = get_model("fractalmar_in64", keep_checkpoint=True)
    assert files_in(models(tmp_path)) == ["fractalmar_in64.pth", "fractalmar_in64.safetensors"]
    assert (models(tmp_path) / "fractalmar_in64.pth").read_bytes() == DATA
    assert resolve_model("fractalmar_in64") == path
    [installed] = download.installed_models()
    assert (installed.name, installed.path, installed.published) == ("fractalmar_in64", path, entry)
    assert available_models(folder=tmp_path / "no bundled models") == [installed]


def test_a_dropped_connection_resumes_with_a_range_request(server, tmp_path):
    url = server.file("/checkpoint-last.pth", DATA, drop_at=HALF)
    path = get_model(url, config=CONFIG, keep_checkpoint=True, name="tiny")
    assert server.ranges("/checkpoint-last.pth") == [None, f"bytes={HALF}-"]
    assert (models(tmp_path) / "tiny.pth").read_bytes() == DATA
    sample_tiny(path)


def test_a_server_without_range_support_restarts_cleanly(server, tmp_path):
    url = server.file("/m.pth", DATA, drop_at=HALF, ranges=False)
    get_model(url, config=CONFIG, keep_checkpoint=True)
    assert server.ranges("/m.pth") == [None, f"bytes={HALF}-"]  # asked to resume, got the whole file
    assert (models(tmp_path) / "m.pth").read_bytes() == DATA


def test_redirects_are_followed(server, tmp_path):
    server.file("/files/m.pth", DATA)
    server.redirect("/b", server.url("/files/m.pth"), 302)
    url = server.redirect("/a.pth", server.url("/b"), 301)
    assert get_model(url, config=CONFIG) == models(tmp_path) / "a.safetensors"
    assert [path for path, _ in server.requests] == ["/a.pth", "/b", "/files/m.pth"]


def test_cancel_keeps_the_part_and_the_next_get_resumes_it(server, tmp_path):
    url = server.file("/m.pth", DATA)
    done = []
    with pytest.raises(DownloadCancelled, match=r"cancelled; the .* downloaded are kept in .*m\.pth\.part"):
        get_model(url, config=CONFIG, progress=lambda e: done.append(e.done), cancel=lambda: bool(done))
    part = models(tmp_path) / "m.pth.part"
    kept = part.stat().st_size
    assert 0 < kept < len(DATA) and files_in(models(tmp_path)) == ["m.pth.part"]
    assert download.partial_downloads() == {"m": kept}
    get_model(url, config=CONFIG, cancel=threading.Event())
    assert server.ranges("/m.pth") == [None, f"bytes={kept}-"]
    assert files_in(models(tmp_path)) == ["m.safetensors"]


def test_a_complete_part_is_converted_without_downloading_again(server, tmp_path):
    url = server.file("/m.pth", DATA)
    models(tmp_path).mkdir()
    (models(tmp_path) / "m.pth.part").write_bytes(DATA)  # e.g. killed between the last byte and the rename
    get_model(url, config=CONFIG)
    assert server.ranges("/m.pth") == [f"bytes={len(DATA)}-"]  # answered 416: nothing more to send
    assert files_in(models(tmp_path)) == ["m.safetensors"]


# ----------------------------------------------------------------------------------- failures
@pytest.mark.parametrize("content_type, body", [("text/html; charset=utf-8", b"<p>sign in</p>"),
                                                ("application/octet-stream", b"\n<!DOCTYPE html><html>")])
def test_a_web_page_is_one_line_naming_the_link_and_nothing_is_kept(server, tmp_path, content_type, body):
    url = server.file("/m.pth", body * 1000, content_type=content_type)
    with pytest.raises(UserError) as error:
        get_model(url, config=CONFIG)
    assert url in one_line(error) and "web page" in one_line(error)
    assert files_in(models(tmp_path)) == []


def test_not_found_is_one_line(server, tmp_path):
    with pytest.raises(UserError) as error:
        get_model(server.url("/missing.pth"), config=CONFIG)
    assert "was not found (HTTP 404)" in one_line(error) and files_in(models(tmp_path)) == []


def test_no_network_is_one_line_after_a_few_tries(tmp_path):
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    refused = rf"cannot download from 127\.0\.0\.1:{port} \(.*\); check the network"
    with pytest.raises(UserError, match=refused):
        get_model(f"http://127.0.0.1:{port}/m.pth", config=CONFIG)
    assert files_in(models(tmp_path)) == []


def test_a_full_disk_is_one_line_and_keeps_the_part_to_resume(server, tmp_path, monkeypatch):
    url = server.file("/m.pth", DATA)
    written = []

    def fills_up(out, chunk):
        if written:
            raise OSError(errno.ENOSPC, "No space left on device")
        written.append(out.write(chunk))

    monkeypatch.setattr(download, "_append", fills_up)
    with pytest.raises(UserError) as error:
        get_model(url, config=CONFIG)
    assert "the disk is full" in one_line(error) and "m.pth.part" in one_line(error)
    assert files_in(models(tmp_path)) == ["m.pth.part"]
    assert (models(tmp_path) / "m.pth.part").read_bytes() == DATA[:written[0]]
    monkeypatch.undo()
    monkeypatch.setenv(download.ENV_VAR, str(models(tmp_path)))
    get_model(url, config=CONFIG)  # room again: resumes
    assert server.ranges("/m.pth")[-1] == f"bytes={written[0]}-"


def test_too_little_free_space_is_refused_before_downloading(server, tmp_path, monkeypatch):
    url = server.file("/m.pth", DATA)
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage(10**9, 10**9 - 1000, 1000))
    with pytest.raises(UserError) as error:
        get_model(url, config=CONFIG)
    assert "not enough free space" in one_line(error) and "1.0 kB is free" in one_line(error)
    assert files_in(models(tmp_path)) == []


@pytest.mark.parametrize("length", [True, False], ids=["announced", "found-at-the-end"])
def test_a_size_unlike_the_catalogue_is_one_line(server, tmp_path, monkeypatch, length):
    url = server.file("/checkpoint-last.pth", DATA, length=length)
    entry = replace(published.PUBLISHED["fractalmar_huge_in256"], url=url)
    monkeypatch.setitem(published.PUBLISHED, entry.name, entry)
    with pytest.raises(UserError) as error:
        get_model(entry.name)
    assert f"{len(DATA):,} bytes, but FractalMAR-H, 256×256 is about" in one_line(error)
    assert files_in(models(tmp_path)) == []


def test_a_truncated_file_fails_to_convert_in_one_line_and_is_removed(server, tmp_path):
    url = server.file("/m.pth", DATA[:HALF])  # the server itself has half a file
    with pytest.raises(UserError) as error:
        get_model(url, config=CONFIG)
    assert "the download of m is damaged" in one_line(error) and "downloads it again" in one_line(error)
    assert files_in(models(tmp_path)) == []


def test_a_wrong_config_keeps_the_download_for_the_next_try(server, tmp_path):
    url = server.file("/m.pth", DATA)
    with pytest.raises(UserError) as error:
        get_model(url, config="tiny_ar_in16")
    assert "the downloaded checkpoint is kept in" in one_line(error)
    assert files_in(models(tmp_path)) == ["m.pth"]
    get_model(url, config=CONFIG)
    assert files_in(models(tmp_path)) == ["m.safetensors"] and len(server.requests) == 1


@pytest.mark.parametrize("text, message", [
    ("zebra", "unknown model 'zebra': give a published model"),
    ("fractalmar_hug", "did you mean 'fractalmar_huge_in256'"),
    ("ftp://example.com/m.pth", "only http:// and https:// links"),
    ("http://example.com/", "cannot name a model after"),
])
def test_what_cannot_be_installed_is_said_before_any_download(text, message):
    with pytest.raises(UserError, match=message):
        get_model(text)


# ------------------------------------------------------------------------------ folder, remove
def test_models_dir_is_the_platform_data_folder_unless_overridden(monkeypatch, tmp_path):
    assert download.models_dir() == tmp_path / "models"
    monkeypatch.delenv(download.ENV_VAR)
    monkeypatch.setenv("FRACTAL_STUDIO_HOME", str(tmp_path / "home"))  # every folder under one (paths.py)
    assert download.models_dir() == tmp_path / "home" / "data" / "models"
    monkeypatch.delenv("FRACTAL_STUDIO_HOME")
    assert download.models_dir().parts[-2:] == ("fractal-studio", "models")


def test_remove_takes_the_model_its_part_and_checkpoint(tmp_path):
    folder = models(tmp_path)
    folder.mkdir()
    for name in ("a.safetensors", "a.pth.part", "a.pth", "b.safetensors"):
        (folder / name).write_bytes(b"x")
    assert [p.name for p in download.remove_model("a")] == ["a.safetensors", "a.pth.part", "a.pth"]
    assert files_in(folder) == ["b.safetensors"]
    with pytest.raises(UserError, match=r"no model named 'a' is installed in .* \(installed: b\)"):
        download.remove_model("a")
    with pytest.raises(UserError, match="is not a model name"):
        download.remove_model("../b")
