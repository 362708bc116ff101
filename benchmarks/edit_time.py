"""The edit budget: from Generate to the last candidate on a 12-megapixel photo, the bundled photo
model, `--work-scale auto`, as the CLI and the app run it (the engine; no file decoding or encoding).

    .venv/bin/python benchmarks/edit_time.py [--threads 2] [--repeat 3]

Cases: a 60-px brush stroke across the photo and a 60-px blob (an object removal), 1 and 3
candidates, with and without coarse to fine (`--no-detail`); the photo is the held-out sunset
(4272x2848; `fractal-studio train --data photos` fetches it). Prints the median seconds of each
and the ratio with coarse to fine to without, measured side by side in one run.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import cv2
import numpy as np
import torch
from eta_accuracy import stroke  # the same stroke across the photo as the time-left benchmark

from fractal_studio.editing.engine import EditOptions, run_edit
from fractal_studio.model.weights import load_model
from fractal_studio.training.data import load_rgb, photo_files


def blob(shape: tuple[int, int], size: int) -> np.ndarray:
    mask = np.zeros(shape, np.uint8)
    cv2.circle(mask, (shape[1] // 2, shape[0] // 2), size // 2, 1, -1)
    return mask.astype(bool)


def seconds(model, image, mask, options: EditOptions, repeat: int) -> tuple[float, str]:
    times, scales = [], ""
    for _ in range(repeat):
        started = time.perf_counter()
        *_, result = run_edit(model, image, mask, options)
        times.append(time.perf_counter() - started)
        scales = f"{result.metadata['work_scale']} -> {result.metadata.get('detail_scales', '-')}"
    return statistics.median(times), scales


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="models/photo_64.safetensors")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    model = load_model(args.model).eval()
    sunset = next(f for f in photo_files("heldout") if "sunset" in str(f))
    image = np.ascontiguousarray(np.asarray(load_rgb(sunset)))
    print(f"{image.shape[1]}x{image.shape[0]} photo, {args.threads} threads, median of {args.repeat}",
          file=sys.stderr)
    print("case | candidates | coarse to fine (s) | coarse only (s) | ratio | scales")
    masks = (("60-px stroke", stroke(image.shape[:2], 60)), ("60-px blob", blob(image.shape[:2], 60)))
    for name, mask in masks:
        for candidates in (1, 3):
            detail, scales = seconds(model, image, mask, EditOptions(candidates=candidates), args.repeat)
            coarse_only = EditOptions(candidates=candidates, detail=False)
            coarse, _ = seconds(model, image, mask, coarse_only, args.repeat)
            print(f"{name} | {candidates} | {detail:.2f} | {coarse:.2f} | {detail / coarse:.2f}x | {scales}",
                  flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
