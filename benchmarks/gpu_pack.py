"""Packs the photo model's training photos small enough to travel to the device machine.

    .venv/bin/python benchmarks/gpu_pack.py [--out .gpu/photos] [--side 1536]

The device machine has no network, and what travels with the working tree is limited (64 MiB in
all): the 39 training photos (60 MB as packaged) are written as JPEGs of at most `--side` pixels a
side into an ignored folder, to be named in the device tool's `carry` and passed to
`benchmarks/gpu_session.py --photos`. The held-out photos are never packed.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> int:
    from fractal_studio.training.data import load_rgb
    from fractal_studio.training.fetch import photo_files

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(ROOT / ".gpu" / "photos"))
    parser.add_argument("--side", type=int, default=1536)
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    total = 0
    for index, path in enumerate(photo_files("train")):
        image = load_rgb(path)
        image.thumbnail((args.side, args.side))
        target = out / f"{index:02d}_{Path(path).stem}.jpg"  # packages share file names
        image.save(target, quality=92)
        total += target.stat().st_size
    print(f"{len(list(out.glob('*.jpg')))} photos, {total / 2**20:.1f} MiB in {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
