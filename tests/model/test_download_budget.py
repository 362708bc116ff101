"""A download's budget (#33): no server can make `get_model` run away. A size cap with or without a
Content-Length, a bounded number of wrong ranges, a minimum rate, a stall limit and a deadline, each one
line; nothing partial is left under a final name and no installed file is touched. Every server is a
real one on 127.0.0.1 (tests/checkpoint_server.py) with limits lowered so that each test takes well
under a second or two."""

from __future__ import annotations

import hashlib
import time
from dataclasses import replace

import pytest

from fractal_studio.errors import UserError
from fractal_studio.model import download, published
from fractal_studio.model.download import get_model

from ..checkpoint_server import CONFIG, DATA


@pytest.fixture
def folder(monkeypatch, tmp_path):
    """The models folder, holding an installed model that no failed download may touch; no waits
    between retries, and a budget the tests lower further where they need to."""
    monkeypatch.setattr(download, "CHUNK_BYTES", 16 * 1024)
    monkeypatch.setattr(download, "RETRY_WAIT_S", 0.0)
    monkeypatch.setattr(download, "WATCH_INTERVAL_S", 0.02)
    monkeypatch.setattr(download, "RATE_WINDOW_S", 5.0)
    monkeypatch.setenv(download.ENV_VAR, str(tmp_path / "models"))
    models = tmp_path / "models"
    models.mkdir()
    (models / "other.safetensors").write_bytes(b"an installed model")
    return models


def untouched(folder) -> bool:
    return (folder / "other.safetensors").read_bytes() == b"an installed model"


def files_in(folder):
    return sorted(p.name for p in folder.iterdir())


def failure(*args, **kwargs) -> tuple[str, float]:
    """get_model's one-line message and how long it took to fail."""
    started = time.monotonic()
    with pytest.raises(UserError) as error:
        get_model(*args, **kwargs)
    text = str(error.value)
    assert text and "\n" not in text
    return text, time.monotonic() - started


# ------------------------------------------------------------------------------------- size
def test_a_file_without_a_length_stops_at_the_cap_and_nothing_is_kept(server, folder, monkeypatch):
    monkeypatch.setattr(download, "MAX_DOWNLOAD_BYTES", 100_000)
    url = server.file("/m.pth", DATA, length=False)  # 596 kB, no Content-Length: found only by reading
    text, _ = failure(url, config=CONFIG)
    assert f"{url} sent more than the 100 kB a model checkpoint can be" in text
    assert "nothing was kept" in text
    assert files_in(folder) == ["other.safetensors"] and untouched(folder)


def test_a_length_over_the_cap_is_refused_before_the_body(server, folder, monkeypatch):
    monkeypatch.setattr(download, "MAX_DOWNLOAD_BYTES", 100_000)
    url = server.file("/m.pth", DATA)
    text, _ = failure(url, config=CONFIG)
    assert f"{url} offers {len(DATA):,} bytes (596 kB), more than the 100 kB a model checkpoint" in text
    assert len(server.requests) == 1 and files_in(folder) == ["other.safetensors"] and untouched(folder)


def test_a_published_model_without_a_length_is_capped_at_its_catalogue_size(server, folder, monkeypatch):
    url = server.file("/checkpoint-last.pth", DATA, length=False)
    entry = replace(published.PUBLISHED["fractalmar_in64"], url=url, download_bytes=200_000, preset=CONFIG)
    monkeypatch.setitem(published.PUBLISHED, entry.name, entry)
    text, _ = failure(entry.name)
    assert "sent more than the 201 kB a model checkpoint can be" in text
    assert files_in(folder) == ["other.safetensors"] and untouched(folder)


def test_the_cap_is_far_above_every_published_model():
    largest = max(entry.download_bytes for entry in published.PUBLISHED.values())
    assert download.MAX_DOWNLOAD_BYTES > 4 * largest


# ------------------------------------------------------------------------------ wrong ranges
def test_a_server_that_always_sends_the_wrong_range_gives_up_after_a_few_requests(server, folder):
    url = server.file("/m.pth", DATA, wrong_range=True)
    text, seconds = failure(url, config=CONFIG)
    restarts = download.MAX_RESTARTS + 1
    assert (f"the server at 127.0.0.1:{server.httpd.server_address[1]} answered {restarts} times with the "
            "wrong part of the file (asked for the file from byte 0, got it from byte 1)") in text
    assert len(server.requests) == restarts <= 5 and seconds < 5
    assert files_in(folder) == ["other.safetensors"] and untouched(folder)


# ------------------------------------------------------------------------------- time limits
def test_a_byte_at_a_time_is_too_slow_and_gives_up_within_the_window(server, folder, monkeypatch):
    monkeypatch.setattr(download, "RATE_WINDOW_S", 0.4)
    monkeypatch.setattr(download, "MIN_RATE_BYTES_S", 10_000)
    url = server.file("/m.pth", DATA, byte_delay=0.01)  # about 100 bytes a second
    text, seconds = failure(url, config=CONFIG)
    assert "the download from 127.0.0.1" in text and "is too slow: " in text
    assert "under the 10 kB/s a download needs" in text
    assert "downloaded are kept in" in text and "m.pth.part" in text and "same command resumes" in text
    assert 0.4 <= seconds < 3
    part = folder / "m.pth.part"
    assert files_in(folder) == ["m.pth.part", "other.safetensors"] and untouched(folder)
    assert 0 < part.stat().st_size < 1000 and DATA.startswith(part.read_bytes())  # a prefix, not a file


def test_a_stall_after_the_headers_gives_up_within_the_window(server, folder, monkeypatch):
    monkeypatch.setattr(download, "RATE_WINDOW_S", 0.4)  # the socket's own timeout stays 30 s
    url = server.file("/m.pth", DATA, stall=True)
    text, seconds = failure(url, config=CONFIG)
    assert "stalled: no data arrived for 0.4 s; nothing was kept; check the network connection" in text
    assert 0.4 <= seconds < 3
    assert files_in(folder) == ["other.safetensors"] and untouched(folder)


def test_headers_a_byte_at_a_time_are_a_stall_too(server, folder, monkeypatch):
    monkeypatch.setattr(download, "RATE_WINDOW_S", 0.4)
    url = server.file("/m.pth", DATA, header_delay=0.05)  # a header line takes seconds to arrive
    text, seconds = failure(url, config=CONFIG)
    assert "stalled: no data arrived for 0.4 s" in text and 0.4 <= seconds < 3
    assert files_in(folder) == ["other.safetensors"] and untouched(folder)


def test_a_download_past_the_deadline_stops_and_keeps_what_it_has(server, folder, monkeypatch):
    monkeypatch.setattr(download, "DEADLINE_S", 0.5)
    monkeypatch.setattr(download, "MIN_RATE_BYTES_S", 1)
    url = server.file("/m.pth", DATA, delay=0.05)  # 16 KiB every 50 ms: steady, but needs 1.8 s
    text, seconds = failure(url, config=CONFIG)
    assert "did not finish within 0.5 s, the most one download may take" in text and "m.pth.part" in text
    assert 0.5 <= seconds < 3
    part = folder / "m.pth.part"
    kept = part.stat().st_size
    assert 0 < kept < len(DATA) and DATA.startswith(part.read_bytes())
    assert files_in(folder) == ["m.pth.part", "other.safetensors"] and untouched(folder)
    monkeypatch.setattr(download, "DEADLINE_S", 60.0)  # the same command resumes it
    path = get_model(url, config=CONFIG, keep_checkpoint=True)
    assert server.ranges("/m.pth") == [None, f"bytes={kept}-"]
    assert (folder / "m.pth").read_bytes() == DATA and path.is_file()


def test_a_failed_download_never_replaces_a_kept_checkpoint_or_installed_model(server, folder, monkeypatch):
    """An installed model is used as it is; a failed download of another name touches neither."""
    (folder / "m.safetensors").write_bytes(b"installed m")
    url = server.file("/m.pth", DATA, wrong_range=True)
    assert get_model(url, config=CONFIG) == folder / "m.safetensors" and server.requests == []
    monkeypatch.setattr(download, "MAX_DOWNLOAD_BYTES", 1000)
    before = {name: hashlib.sha256((folder / name).read_bytes()).hexdigest() for name in files_in(folder)}
    failure(server.file("/n.pth", DATA, length=False), config=CONFIG)
    after = {name: hashlib.sha256((folder / name).read_bytes()).hexdigest() for name in files_in(folder)}
    assert after == before
