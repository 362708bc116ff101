"""Event-loop responsiveness of the app during a generation (the UI must never block for > 16 ms).

Runs the real MainWindow on the app's qasync loop, opens a synthetic photo, masks a region, starts a
generation and probes the loop with a 5 ms QTimer: the largest delay between ticks (beyond the
interval) is how long the loop was blocked. Also times brush segments and repaints on a 4000×3000 canvas.

    QT_QPA_PLATFORM=offscreen .venv/bin/python benchmarks/app_responsiveness.py \
        [--model PATH] [--size 1600x1200]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from _app import open_window, run_on_app_loop  # noqa: E402


def default_model() -> str:
    bundled = ROOT / "models" / "photo_64.safetensors"
    if bundled.is_file():
        return str(bundled)
    toy = Path(tempfile.gettempdir()) / "toy.safetensors"
    if not toy.is_file():
        from fractal_studio.model.convert import convert_checkpoint

        ref = ROOT / "tests" / "fixtures" / "reference" / "toy_cols"
        convert_checkpoint(ref / "checkpoint-last.pth", toy, str(ref / "config.json"))
    return str(toy)


async def measure(window, args) -> dict:
    from fractal_studio.editing.document import Document

    loop = asyncio.get_running_loop()
    await window.load_model_path(args.model)
    if window.model is None:
        raise SystemExit("model did not load")
    w, h = (int(v) for v in args.size.split("x"))
    y, x = np.mgrid[0:h, 0:w]
    image = np.stack([(x * 255 // w), (y * 255 // h), ((x + y) * 127 // (w + h))], -1).astype(np.uint8)
    window.set_document(Document(image))
    mask = np.zeros((h, w), bool)
    mask[h // 3: h // 3 + args.mask, w // 3: w // 3 + args.mask] = True
    window.session.set_mask(mask, "benchmark mask")
    if args.iterations:
        window.params_panel.iterations.setText(args.iterations)
    window.params_panel.candidates.setValue(args.candidates)

    ticks = []
    from PySide6.QtCore import QTimer

    probe = QTimer()
    probe.setInterval(5)
    probe.timeout.connect(lambda: ticks.append(time.perf_counter()))
    probe.start()
    await asyncio.sleep(0.2)
    start = time.perf_counter()
    job = window.generate()
    assert job is not None, "generation did not start"
    await job
    await asyncio.sleep(0.2)
    elapsed = time.perf_counter() - start
    probe.stop()
    times = np.array([t for t in ticks if t >= start - 0.01])
    gaps = np.diff(times) * 1000.0 - 5.0
    worst = int(np.argmax(gaps))
    del loop
    return {"run_s": elapsed, "worst_block_at_s": float(times[worst] - start),
            "blocks_over_50ms": int((gaps > 50).sum()), "events": window.stream_events, "ticks": len(gaps),
            "max_block_ms": float(gaps.max()), "p99_block_ms": float(np.percentile(gaps, 99)),
            "result": bool(window.session.candidates)}


def brush_timings() -> dict:
    from fractal_studio.app.mask_tools import MaskLayer

    layer = MaskLayer()
    layer.load(np.zeros((3000, 4000), np.uint8))
    times = []
    for i in range(200):
        t = time.perf_counter()
        layer.paint_segment((1000 + i * 5, 1500), (1005 + i * 5, 1502), 60, 0.7, erase=False)
        times.append(time.perf_counter() - t)
    return {"brush_segment_ms_mean": 1000 * float(np.mean(times)),
            "brush_segment_ms_max": 1000 * float(np.max(times))}


def repaint_timing(window) -> dict:
    from fractal_studio.editing.document import Document

    image = (np.random.default_rng(0).random((3000, 4000, 3)) * 255).astype(np.uint8)
    window.set_document(Document(image))
    window.canvas.fit()
    viewport = window.canvas.viewport()
    times = []
    for _ in range(5):
        t = time.perf_counter()
        viewport.repaint()
        times.append(time.perf_counter() - t)
    return {"full_repaint_4000x3000_fit_ms": 1000 * float(np.median(times))}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None)
    parser.add_argument("--size", default="1600x1200")
    parser.add_argument("--mask", type=int, default=200, help="side of the masked square")
    parser.add_argument("--iterations", default="", help="e.g. 16,4 (default: the model's)")
    parser.add_argument("--candidates", type=int, default=1)
    parser.add_argument("--threads", type=int, default=0, help="torch intra-op threads (0 = torch's default)")
    args = parser.parse_args()
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    args.model = args.model or default_model()
    window = open_window(1400, 900)
    results = run_on_app_loop(measure(window, args))
    results.update(brush_timings())
    results.update(repaint_timing(window))
    print(f"model {Path(args.model).name}, image {args.size}, mask {args.mask}px")
    for key, value in results.items():
        print(f"  {key:32s} {value:.2f}" if isinstance(value, float) else f"  {key:32s} {value}")
    window.close()
    return 0 if results["max_block_ms"] <= 16 else 1  # one frame at 60 Hz


if __name__ == "__main__":
    sys.exit(main())
