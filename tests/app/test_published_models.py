"""Model › Get published models…: a download from a local server with live progress, cancelled and
resumed from the app, then installed, listed in the model picker and loaded."""

from __future__ import annotations

from dataclasses import replace

import pytest

from fractal_studio.model import download, published

from ..checkpoint_server import CheckpointServer
from ..conftest import REFERENCE

TINY = REFERENCE / "tiny_fractalmar"
DATA = (TINY / "checkpoint-last.pth").read_bytes()


@pytest.fixture
def server(monkeypatch, tmp_path):
    server = CheckpointServer()
    url = server.file("/checkpoint-last.pth", DATA, delay=0.05)  # slow: about 1.5 s for the file
    entry = replace(published.PUBLISHED["fractalmar_in64"], url=url, download_bytes=len(DATA), parameters=1,
                    preset=str(TINY / "config.json"))  # the tiny fixture stands in for the published file
    monkeypatch.setitem(published.PUBLISHED, "fractalmar_in64", entry)
    monkeypatch.setenv(download.ENV_VAR, str(tmp_path / "installed"))
    monkeypatch.setattr(download, "CHUNK_BYTES", 16 * 1024)
    monkeypatch.setattr(download, "PROGRESS_INTERVAL_S", 0.0)
    yield server
    server.close()


def test_download_cancel_resume_install_and_use(window, qtbot, server, tmp_path):
    dialog = window.show_published_models()
    assert dialog.isVisible() and dialog.table.rowCount() == len(published.PUBLISHED)
    button = dialog.buttons["fractalmar_in64"]
    assert button.text() == "Download"
    shown = []
    show = dialog.show_progress
    dialog.show_progress = lambda name, event: (show(name, event), shown.append(dialog.progress_label.text()))
    button.click()
    qtbot.waitUntil(lambda: any("Downloading fractalmar_in64" in text and " of " in text for text in shown),
                    timeout=10000)
    assert button.text() == "Cancel" and not dialog.buttons["fractalmar_base_in256"].isEnabled()
    assert window.canvas.isEnabled()  # the app stays usable meanwhile
    button.click()  # Cancel
    qtbot.waitUntil(lambda: dialog.task.done(), timeout=10000)
    part = tmp_path / "installed" / "fractalmar_in64.pth.part"
    assert part.is_file() and 0 < part.stat().st_size < len(DATA)
    assert "Cancelled" in dialog.progress_label.text() and button.text() == "Resume"
    kept = part.stat().st_size
    server.routes["/checkpoint-last.pth"].delay = 0.0
    button.click()  # Resume
    qtbot.waitUntil(lambda: dialog.task.done(), timeout=20000)
    assert "Installed fractalmar_in64" in dialog.progress_label.text(), dialog.progress_label.text()
    assert server.ranges("/checkpoint-last.pth")[-1] == f"bytes={kept}-"  # resumed, not restarted
    installed = tmp_path / "installed" / "fractalmar_in64.safetensors"
    assert installed.is_file() and button.text() == "Use"
    assert window.model_panel.combo.findData(str(installed)) >= 0  # in the model picker
    button.click()  # Use
    qtbot.waitUntil(lambda: window.model_path == str(installed), timeout=20000)


def test_closing_the_dialog_stops_the_download_and_keeps_it(window, qtbot, server, tmp_path):
    dialog = window.show_published_models()
    dialog.buttons["fractalmar_in64"].click()
    qtbot.waitUntil(lambda: (tmp_path / "installed" / "fractalmar_in64.pth.part").is_file(), timeout=10000)
    dialog.close()
    qtbot.waitUntil(lambda: dialog.task.done(), timeout=10000)
    assert (tmp_path / "installed" / "fractalmar_in64.pth.part").is_file()
    assert not (tmp_path / "installed" / "fractalmar_in64.safetensors").exists()
    assert window.show_published_models() is dialog and dialog.buttons["fractalmar_in64"].text() == "Resume"
