"""Takes the README's picture of View › Surprise map: the real window on a photo with a patch of
another photo pasted into it, the heat overlay on, the surprising pixels selected.

    .venv/bin/python benchmarks/surprise_screenshot.py PHOTO OTHER_PHOTO [--out assets/surprise_map.png]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from _app import open_window, run_on_app_loop  # noqa: E402


def pasted_photo(photo: str, other: str, folder: Path) -> Path:
    """PHOTO at 480 px wide with a 48-px square of OTHER pasted a little right of its centre."""
    def read(path):
        image = cv2.imread(path)
        size = (480, round(image.shape[0] * 480 / image.shape[1]))
        return cv2.resize(image, size, interpolation=cv2.INTER_AREA)

    base, patch = read(photo), read(other)
    top, left = base.shape[0] // 2 - 24, 280
    base[top:top + 48, left:left + 48] = patch[40:88, 40:88]
    path = folder / "pasted.png"
    cv2.imwrite(str(path), base)
    return path


async def scenario(window, image: Path, out: str) -> None:
    window.start(image=str(image), model=str(ROOT / "models" / "photo_64.safetensors"))
    if window.model_loading is not None:
        await window.model_loading
    await asyncio.sleep(0.2)
    window.canvas.fit()
    window.surprise_action.setChecked(True)
    task = window.show_surprise_map(True)
    if task is not None:
        await task
    bits = window.surprise_bits()
    await window.select_surprising(float(np.percentile(bits, 99)))
    await asyncio.sleep(0.5)
    window.grab().save(out)
    print(f"saved {out}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("photo")
    parser.add_argument("other")
    parser.add_argument("--out", default=str(ROOT / "assets" / "surprise_map.png"))
    args = parser.parse_args()
    image = pasted_photo(args.photo, args.other, Path(tempfile.mkdtemp()))
    window = open_window(1300, 820)
    run_on_app_loop(scenario(window, image, args.out))
    window.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
