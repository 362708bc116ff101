"""Peak resident memory of `fractal-studio convert` on a checkpoint of FractalMAR-H's layout.

    python benchmarks/convert_memory.py [--preset fractalmar_huge_in256] [--with-optimizer]

Writes a synthetic checkpoint in the authors' layout (random fp32 weights, optionally with AdamW
state like the published files), then converts it in a fresh process and prints that process's peak
RSS as a multiple of the fp32 weight size. The target is below 1.5x.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

WRITE_CHECKPOINT = r"""
import argparse, sys, torch
from fractal_studio.model import FractalModel, preset
from fractal_studio.model.convert import authors_key
name, path, with_optimizer = sys.argv[1], sys.argv[2], sys.argv[3] == "1"
config = preset(name)
with torch.device("meta"):
    model = FractalModel(config)
levels = len(config.generators)
state = {authors_key(k, levels): torch.randn(v.shape) * 0.02 for k, v in model.state_dict().items()}
checkpoint = {"model": state, "epoch": 0,
              "args": argparse.Namespace(model=name, num_conds=config.num_conds,
                                         guiding_pixel=config.guiding_pixel, class_num=config.class_num)}
if with_optimizer:
    moments = {i: {"exp_avg": torch.zeros_like(t), "exp_avg_sq": torch.zeros_like(t)}
               for i, t in enumerate(state.values())}
    checkpoint["optimizer"] = {"state": moments}
torch.save(checkpoint, path)
print(sum(t.numel() for t in state.values()))
"""

# Runs the real CLI in a fresh process and reports that process's own peak RSS.
CONVERT = r"""
import resource, sys
from fractal_studio.cli.main import main
code = main(["convert", sys.argv[1], sys.argv[2]])
assert code == 0, code
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="fractalmar_huge_in256")
    parser.add_argument("--with-optimizer", action="store_true")
    parser.add_argument("--dir", default=None, help="scratch folder (needs ~2-3x the weight size)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        src, dst = Path(tmp) / "checkpoint-last.pth", Path(tmp) / "converted.safetensors"
        made = subprocess.run([sys.executable, "-c", WRITE_CHECKPOINT, args.preset, str(src),
                               "1" if args.with_optimizer else "0"],
                              capture_output=True, text=True, check=True)
        parameters = int(made.stdout.strip())
        weight_bytes = parameters * 4
        start = time.perf_counter()
        out = subprocess.run([sys.executable, "-c", CONVERT, str(src), str(dst)], check=True,
                             capture_output=True, text=True)
        elapsed = time.perf_counter() - start
        peak = int(out.stdout.strip().splitlines()[-1]) * 1024  # ru_maxrss is in kB on Linux
        print(f"{args.preset}: {parameters:,} parameters, fp32 weights {weight_bytes / 2**30:.2f} GiB, "
              f"checkpoint {src.stat().st_size / 2**30:.2f} GiB")
        print(f"convert: {elapsed:.1f}s, peak RSS {peak / 2**30:.2f} GiB = "
              f"{peak / weight_bytes:.2f}x the weights (target < 1.5x)")


if __name__ == "__main__":
    main()
