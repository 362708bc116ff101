"""Start-up cost: from a fresh process to the first sampling step, for the CLI and for the app.

    .venv/bin/python benchmarks/startup.py [--runs 3] [--threads 2]

CLI: `fractal-studio inpaint` on a 640x427 picture with a brush stroke, in a new process each run;
the time from the process's start to the first progress event, and to its exit. App: a new process
opens the main window offscreen, loads the bundled model, opens the picture, paints the stroke and
generates; the time to the window's first paint, to the model loaded, and to the first progress
event shown.
Medians of --runs; the machine's CPU is printed first.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from fractal_studio.sampling.precision import cpu_name

ROOT = Path(__file__).resolve().parents[1]

CLI_CHILD = r"""
import sys, time, json
start = float(sys.argv[1])
marks = {"imported": None, "first_step": None}
from fractal_studio.cli import common
from fractal_studio.cli.main import main
marks["imported"] = time.time() - start
update = common.ProgressBar.update
def first(self, event):
    if marks["first_step"] is None:
        marks["first_step"] = time.time() - start
    update(self, event)
common.ProgressBar.update = first
code = main(sys.argv[2:])
marks["exit"] = time.time() - start
print(json.dumps(marks), file=sys.stderr)
sys.exit(code)
"""

APP_CHILD = r"""
import sys, time, json, asyncio, os
start = float(sys.argv[1])
image, mask_path, threads = sys.argv[2], sys.argv[3], int(sys.argv[4])
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
sys.path.insert(0, sys.argv[5])
from _app import open_window, run_on_app_loop
from PySide6.QtWidgets import QApplication
marks = {}
window = open_window(1200, 800)
QApplication.processEvents()  # its first paint
marks["window"] = time.time() - start
marks["torch_before_window"] = "torch" in sys.modules
async def scenario():
    window.start(image=image)
    if window.model_loading is not None:
        await window.model_loading
    marks["model_loaded"] = time.time() - start
    import torch
    torch.set_num_threads(threads)
    import numpy as np
    from PIL import Image
    mask = np.asarray(Image.open(mask_path)) > 127
    window.session.set_mask(mask, "Brush stroke")
    show = window._show_progress
    def first(run, event):
        marks.setdefault("first_step", time.time() - start)
        show(run, event)
    window._show_progress = first
    job = window.generate()
    await job
    marks["done"] = time.time() - start
run_on_app_loop(scenario())
window.close()
print(json.dumps(marks), file=sys.stderr)
"""


def child_marks(command: list[str], env: dict | None = None) -> dict:
    out = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, env=env)
    if out.returncode:
        raise SystemExit(f"failed: {' '.join(command)}\n{out.stderr[-2000:]}")
    return json.loads(out.stderr.strip().splitlines()[-1])


def picture(folder: Path) -> tuple[Path, Path]:
    import cv2

    rng = np.random.default_rng(0)
    small = rng.integers(0, 256, (6, 8, 3), dtype=np.uint8)
    image = cv2.resize(small, (640, 427), interpolation=cv2.INTER_CUBIC)
    mask = np.zeros((427, 640), np.uint8)
    cv2.polylines(mask, [np.array([(80, 200), (320, 150), (560, 260)], np.int32)], False, 255, thickness=30)
    cv2.imwrite(str(folder / "photo.png"), image)
    cv2.imwrite(str(folder / "mask.png"), mask)
    return folder / "photo.png", folder / "mask.png"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    print(f"CPU: {cpu_name()}, {args.threads} torch thread(s)")
    folder = Path(tempfile.mkdtemp())
    image, mask = picture(folder)
    cli, app = [], []
    for run in range(args.runs):
        out = folder / f"out{run}.png"
        cli.append(child_marks([sys.executable, "-c", CLI_CHILD, repr(time.time()), "inpaint", str(image),
                                "--mask", str(mask), "--out", str(out), "--threads", str(args.threads)]))
        app.append(child_marks([sys.executable, "-c", APP_CHILD, repr(time.time()), str(image), str(mask),
                                str(args.threads), str(ROOT / "benchmarks")],
                               env={**os.environ, "OMP_NUM_THREADS": str(args.threads)}))

    def median(rows, key):
        return statistics.median(row[key] for row in rows)

    print(f"CLI inpaint: imports {median(cli, 'imported'):.2f} s, first sampling step "
          f"{median(cli, 'first_step'):.2f} s, exit {median(cli, 'exit'):.2f} s after the process started")
    torch_first = any(row["torch_before_window"] for row in app)
    print(f"app: window {median(app, 'window'):.2f} s ({'after' if torch_first else 'before'} PyTorch is "
          f"imported), model loaded {median(app, 'model_loaded'):.2f} s, "
          f"first step shown {median(app, 'first_step'):.2f} s, run done {median(app, 'done'):.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
