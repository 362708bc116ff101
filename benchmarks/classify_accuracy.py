"""`classify`'s accuracy on the Fashion-MNIST test split (held out), its confusion table, and the
bits/dim figures from which the model file's `unusual` threshold is set.

    OMP_NUM_THREADS=1 nice .venv/bin/python benchmarks/classify_accuracy.py --images 400 --orders 8 \\
        --minutes 25 --out classify_scores.jsonl
    .venv/bin/python benchmarks/classify_accuracy.py --summary classify_scores.jsonl

The first `--images` test images are scored in order, one line of JSON per image, so a run cut off by
`--minutes` still counts. The summary splits the images scored into a calibration half (even
positions) that sets the threshold (the `--percentile` of their mixture bits/dim) and the other half,
on which the flag rate is measured; accuracy is over all of them.
"""

from __future__ import annotations

import argparse
import json
import platform
import time

import torch

from fractal_studio.model.classify import class_scores
from fractal_studio.model.weights import load_model
from fractal_studio.training.data import fashion_mnist


def score(args) -> None:
    torch.manual_seed(args.seed)
    model = load_model(args.model).eval()
    images, labels = fashion_mnist("test")
    start = time.perf_counter()
    with open(args.out, "w") as out:
        for index in range(min(args.images, len(images))):
            if time.perf_counter() - start > args.minutes * 60:
                break
            scores = class_scores(model, images[index:index + 1], args.orders)[0]
            out.write(json.dumps({"index": index, "label": int(labels[index]),
                                  "predicted": scores.ranked()[0],
                                  "mixture_bits_per_dim": scores.mixture_bits_per_dim,
                                  "seconds": time.perf_counter() - start, "orders": args.orders}) + "\n")
            out.flush()


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share / 100 * len(ordered)))]


def summary(args) -> None:
    rows = [json.loads(line) for line in open(args.summary)]
    names = load_model(args.model).config.class_names
    correct = sum(row["label"] == row["predicted"] for row in rows)
    print(f"{len(rows)} test images (the first), {rows[0]['orders']} orders each: accuracy "
          f"{correct / len(rows):.1%}; {rows[-1]['seconds'] / len(rows):.2f} s per image on one thread "
          f"({platform.processor() or platform.machine()})")
    print("confusion (rows: true class, columns: predicted)")
    print(" " * 12 + " ".join(f"{i:>4}" for i in range(len(names))))
    for true in range(len(names)):
        counts = [sum(r["label"] == true and r["predicted"] == p for r in rows) for p in range(len(names))]
        print(f"{true} {names[true][:9]:<10}" + " ".join(f"{c:>4}" for c in counts))
    calibration = [r["mixture_bits_per_dim"] for r in rows[0::2]]
    rest = [r["mixture_bits_per_dim"] for r in rows[1::2]]
    threshold = percentile(calibration, args.percentile)
    median = percentile(calibration, 50)
    flagged = sum(bits > threshold for bits in rest)
    print(f"calibration half ({len(calibration)} images): median {median:.4f} bits/dim, "
          f"{args.percentile:g}th percentile {threshold:.4f}")
    print(f"other half ({len(rest)} images): {flagged} flagged ({flagged / len(rest):.1%})")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="models/fashion_mnist.safetensors")
    parser.add_argument("--images", type=int, default=10_000)
    parser.add_argument("--orders", type=int, default=8)
    parser.add_argument("--minutes", type=float, default=40)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="classify_scores.jsonl")
    parser.add_argument("--summary", help="summarise a finished run's lines instead of scoring")
    parser.add_argument("--percentile", type=float, default=98)
    args = parser.parse_args(argv)
    summary(args) if args.summary else score(args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
