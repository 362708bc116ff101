"""Takes the README screenshot: the real window with a photo, a painted mask and a finished run.

    xvfb-run -s "-screen 0 1600x1000x24" .venv/bin/python benchmarks/app_screenshot.py PHOTO \
        [--out assets/screenshot.png]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from _app import open_window, run_on_app_loop  # noqa: E402


async def scenario(window, args) -> None:
    window.start(image=args.photo, model=args.model)
    if window.model_loading is not None:
        await window.model_loading
    canvas = window.canvas
    await asyncio.sleep(0.3)
    canvas.fit()
    w, h = window.session.doc.size
    canvas.set_brush(size=max(w, h) / 22, hardness=0.7)
    # a stroke along the dragonfly's body in the sample photo (fractions of the image size)
    steps = [i / 30 for i in range(31)]
    points = [(w * (0.44 + 0.15 * t), h * (0.52 - 0.11 * t - 0.03 * t * (1 - t))) for t in steps]
    layer = canvas.layer
    box = None
    for a, b in zip(points, points[1:], strict=False):
        touched = layer.paint_segment(a, b, canvas.brush_size, canvas.hardness, erase=False)
        box = touched.union(box) if touched else box
    canvas.mask_item.update_box(box)
    window._stroked(box)
    if args.generate and window.model is not None:
        window.params_panel.candidates.setValue(3)
        job = window.generate()
        if job is not None:
            await job
        window.candidate_strip.list.setCurrentRow(0)
        window.preview_candidate(-1)  # show the document with its mask; candidates stay in the strip
        window.candidate_strip.list.blockSignals(True)
        window.candidate_strip.list.setCurrentRow(0)
        window.candidate_strip.list.blockSignals(False)
    canvas.update_cursor_at(points[-1])
    await asyncio.sleep(0.5)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    window.grab().save(str(args.out))
    print(f"saved {args.out} ({window.width()}×{window.height()})")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("photo")
    parser.add_argument("--model", default=str(ROOT / "models" / "photo_64.safetensors"))
    parser.add_argument("--out", default=str(ROOT / "assets" / "screenshot.png"))
    parser.add_argument("--no-generate", dest="generate", action="store_false")
    parser.add_argument("--threads", type=int, default=0, help="torch intra-op threads (0 = torch's default)")
    args = parser.parse_args()
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    window = open_window(1500, 920)
    run_on_app_loop(scenario(window, args))
    window.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
