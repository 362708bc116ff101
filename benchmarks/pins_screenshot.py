"""Takes the README picture of pins: the real window with a photo, a mask over an object, pins of
the colour taken from the photo along a line through the hole, and a finished run's candidates.

    .venv/bin/python benchmarks/pins_screenshot.py PHOTO --box L,T,W,H --line X0,Y0,X1,Y1 \
        [--out assets/pins.png]

The pins are put on the line from (X0, Y0) to (X1, Y1) inside the box, in the colour of the photo
at (X0, Y0) (as Ctrl+click with the Pin tool takes it).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from _app import open_window, run_on_app_loop  # noqa: E402


def numbers(text: str, count: int) -> list[int]:
    values = [int(v) for v in text.split(",")]
    if len(values) != count:
        raise SystemExit(f"expected {count} whole numbers separated by commas, got {text!r}")
    return values


async def scenario(window, args) -> None:
    from fractal_studio.editing.windows import Rect

    window.start(image=args.photo, model=args.model)
    if window.model_loading is not None:
        await window.model_loading
    await asyncio.sleep(0.3)
    window.canvas.fit()
    left, top, width, height = numbers(args.box, 4)
    window.session.rectangle(Rect(left, top, width, height))
    x0, y0, x1, y1 = numbers(args.line, 4)
    window.set_tool("pin")
    window._pin_clicked(x0, y0, "pick")
    for k in range(args.pins):
        t = (k + 0.5) / args.pins
        window._pin_clicked(x0 + t * (x1 - x0), y0 + t * (y1 - y0), "pin")
    if window.model is not None:
        window.params_panel.candidates.setValue(3)
        job = window.generate()
        if job is not None:
            await job
        window.preview_candidate(-1)  # the document with its mask and pins; the candidates in the strip
    await asyncio.sleep(0.5)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    window.grab().save(str(args.out))
    print(f"saved {args.out} ({window.width()}×{window.height()})")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("photo")
    parser.add_argument("--box", required=True, help="the mask's rectangle: left,top,width,height")
    parser.add_argument("--line", required=True, help="the pins' line: x0,y0,x1,y1 (the colour at x0,y0)")
    parser.add_argument("--pins", type=int, default=6, help="dots along the line")
    parser.add_argument("--model", default=str(ROOT / "models" / "photo_64.safetensors"))
    parser.add_argument("--out", default=str(ROOT / "assets" / "pins.png"))
    args = parser.parse_args()
    window = open_window(1200, 760)
    run_on_app_loop(scenario(window, args))
    window.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
