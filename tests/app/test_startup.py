"""The window shows before PyTorch is imported, and the engine is imported on the UI thread."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

CHILD = r"""
import asyncio, sys, threading
importers = {}
class Watch:
    def find_spec(self, name, path, target=None):
        if name == "torch" and "torch" not in importers:
            importers["torch"] = threading.current_thread().name
        return None
sys.meta_path.insert(0, Watch())
from PySide6.QtWidgets import QApplication
app = QApplication(sys.argv)
import fractal_studio.app.main_window  # everything the window needs to show
assert "torch" not in sys.modules, "the window's modules import PyTorch"
from fractal_studio.app.main import event_loop
from fractal_studio.app.worker import ENGINE_MODULES, call
loop = event_loop(app)
def in_worker():
    import fractal_studio.sampling
    return threading.current_thread().name
with loop:
    worker = loop.run_until_complete(call(in_worker))
assert worker != threading.main_thread().name
assert importers["torch"] == threading.main_thread().name, importers
assert all(name in sys.modules for name in ENGINE_MODULES)
print("ok")
"""


def test_the_window_needs_no_pytorch_and_the_engine_is_imported_on_the_ui_thread():
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    out = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True, cwd=ROOT, env=env,
                         timeout=120)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.strip().endswith("ok")


def test_the_model_panel_says_the_first_model_is_loading_until_it_is(make_window, qtbot, converted):
    window = make_window()
    assert "No model is loaded" in window.model_panel.info.text()
    window.load_model_path(str(converted["toy_cols"]))
    assert window.model_panel.info.text() == "Loading toy_cols…"
    qtbot.waitUntil(lambda: window.model is not None, timeout=20000)
    assert "Loading" not in window.model_panel.info.text()
