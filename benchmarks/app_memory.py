"""Resident memory of the app editing a 6000x4000 photo with the bundled model, undo history included.

Opens a 6000x4000 JPEG in the real MainWindow (offscreen), then three times: mask a region,
generate 3 candidates, apply one; then undoes and redoes everything. Prints the resident memory
after each stage and the peak (VmHWM). The target is at most 1.2 GB (it was 1.6 GB before the
editing session kept runs and thumbnails to the edited box and large buffers went back to the system).

    QT_QPA_PLATFORM=offscreen .venv/bin/python benchmarks/app_memory.py [--size 6000x4000]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
from pathlib import Path

import numpy as np

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _app import open_window, run_on_app_loop  # noqa: E402
from app_responsiveness import default_model  # noqa: E402


def memory_mb() -> tuple[float, float]:
    """(current RSS, peak RSS) of this process in MB, from /proc (Linux)."""
    fields = dict(line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines())
    return (int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024)


def write_photo(path: Path, width: int, height: int) -> None:
    from PIL import Image

    # Built in uint8, row by row, so the benchmark's own arrays don't inflate the peak it measures.
    rng = np.random.default_rng(0)
    x = (np.arange(width) * 200 // width).astype(np.uint8)
    pixels = np.empty((height, width, 3), np.uint8)
    for row in range(height):
        noise = rng.integers(0, 40, (width, 3), dtype=np.uint8)
        pixels[row, :, 0] = x
        pixels[row, :, 1] = row * 200 // height
        pixels[row, :, 2] = (x // 2 + row * 100 // height).astype(np.uint8)
        pixels[row] += noise
    Image.fromarray(pixels).save(path, quality=90)
    del pixels


async def session(window, photo: Path, model: str, report) -> None:
    window.load_model_path(model)
    while window.model is None:
        await asyncio.sleep(0.05)
    report("model loaded")
    assert window.open_image(str(photo))
    height, width = window.session.doc.mask.shape
    report(f"{width}x{height} photo open")
    window.params_panel.candidates.setValue(3)
    for run in range(3):
        mask = np.zeros((height, width), bool)
        top, left = (run + 1) * height // 5, (run + 1) * width // 5  # inside any image size
        mask[top:top + 90, left:left + 120] = True
        window.session.set_mask(mask, f"mask {run + 1}")
        job = window.generate()
        assert job is not None, "generation did not start"
        await job
        await asyncio.sleep(0.2)
        window.apply_candidate(0)
        report(f"run {run + 1}: generated 3 candidates, applied one")
    while window.session.undo():
        pass
    report("everything undone")
    while window.session.redo():
        pass
    report("everything redone")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="6000x4000")
    parser.add_argument("--model", default=None)
    args = parser.parse_args()
    import torch

    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
    width, height = (int(v) for v in args.size.split("x"))
    tmp = Path(tempfile.mkdtemp())
    photo = tmp / "photo.jpg"
    write_photo(photo, width, height)
    window = open_window(1400, 900, str(tmp))

    def report(stage: str) -> None:
        current, peak = memory_mb()
        print(f"{stage:45s} RSS {current:7.0f} MB   peak {peak:7.0f} MB", flush=True)

    report("window open")
    run_on_app_loop(session(window, photo, args.model or default_model(), report))
    window.close_running_job(10)
    peak = memory_mb()[1]
    print(f"peak resident memory: {peak:.0f} MB (target <= 1200 MB): {'ok' if peak <= 1200 else 'OVER'}")
    return 0 if peak <= 1200 else 1


if __name__ == "__main__":
    sys.exit(main())
