"""The time left as the app shows it, against the time the run really took (run on demand, under
a real display or offscreen).

    QT_QPA_PLATFORM=xcb xvfb-run -s "-screen 0 1600x1000x24" .venv/bin/python benchmarks/app_eta.py \
        PHOTO [--candidates 4] [--brush 0.08] [--shots DIR]

(Without QT_QPA_PLATFORM the window is offscreen, as in the other app benchmarks.)

Paints a stroke across the photo, generates, reads the progress line four times a second and
prints, for every reading once a fifth of the run has passed, the time left it showed and the
time that was really left; with --shots, grabs the window at a third and two thirds of the run.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from _app import open_window, run_on_app_loop  # noqa: E402

ETA = re.compile(r"ETA (?:(\d+):(\d\d)|(\d+)s)")


def shown_seconds(text: str) -> int | None:
    match = ETA.search(text)
    if match is None:
        return None
    minutes, seconds, plain = match.groups()
    return int(plain) if plain is not None else int(minutes) * 60 + int(seconds)


async def scenario(window, args) -> list[tuple[float, str]]:
    window.start(image=args.photo, model=args.model)
    if window.model_loading is not None:
        await window.model_loading
    await asyncio.sleep(0.3)
    canvas = window.canvas
    canvas.fit()
    w, h = window.session.doc.size
    size = max(w, h) * args.brush
    points = [(w * (0.15 + 0.7 * t / 40), h * (0.5 + 0.25 * (t / 40 - 0.5) ** 2)) for t in range(41)]
    box = None
    for a, b in zip(points, points[1:], strict=False):
        touched = canvas.layer.paint_segment(a, b, size, 0.8, erase=False)
        box = touched.union(box) if touched else box
    canvas.mask_item.update_box(box)
    window._stroked(box)
    window.params_panel.candidates.setValue(args.candidates)
    readings: list[tuple[float, str]] = []
    start = time.perf_counter()
    job = window.generate()
    shots = [1 / 3, 2 / 3]
    while not job.done():
        readings.append((time.perf_counter() - start, window.progress_label.text()))
        if args.shots and shots and window.progress.value() >= shots[0] * 1000:
            window.grab().save(str(Path(args.shots) / f"eta_{int(shots.pop(0) * 100)}.png"))
        await asyncio.sleep(0.25)
    await job
    readings.append((time.perf_counter() - start, "done"))
    return readings


DISPLAY_RESOLUTION = 0.5  # seconds: whole seconds are shown (as in eta_accuracy.py)


def report(readings: list[tuple[float, str]]) -> None:
    """Each reading after a fifth of the run (and before its last 5%): shown against really left,
    the error counted beyond the display's half second, as eta_accuracy.py's "as shown"."""
    total = readings[-1][0]
    print(f"run took {total:.1f} s")
    worst = 0.0
    for elapsed, text in readings[:-1]:
        shown = shown_seconds(text)
        left = total - elapsed
        if shown is None or elapsed < 0.2 * total or left < 0.05 * total:
            continue
        error = max(abs(shown - left) - DISPLAY_RESOLUTION, 0.0) / left
        worst = max(worst, error)
        print(f"{elapsed:6.1f} s  shown {shown:4d} s  really left {left:5.1f} s  ({error:.0%})  {text}")
    print(f"worst error of the time shown after 20% of the run: {worst:.0%}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("photo")
    parser.add_argument("--model", default=str(ROOT / "models" / "photo_64.safetensors"))
    parser.add_argument("--candidates", type=int, default=4)
    parser.add_argument("--brush", type=float, default=0.08, help="brush size, a share of the longer side")
    parser.add_argument("--shots", help="folder for two screenshots taken during the run")
    args = parser.parse_args()
    if args.shots:
        Path(args.shots).mkdir(parents=True, exist_ok=True)
    window = open_window(1600, 1000)
    report(run_on_app_loop(scenario(window, args)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
