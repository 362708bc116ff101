"""Training throughput (images/s) of a preset: forward + backward + AdamW on random uint8 images.

    .venv/bin/python benchmarks/train_speed.py --preset fmnist_mar_in32 --batch-size 32 --threads 1
    .venv/bin/python benchmarks/train_speed.py --preset photo_mar_in64 --batch-size 16 --compare

The model is in training mode (training masks, label drop, dropout as configured); the first
`--warmup` steps are not timed. On CUDA the steps run under bf16 autocast, as in `fractal-studio train`.
`--compare` times, side by side in one run, fp32 against bf16 autocast on the CPU and the three
mask styles (`--masks paper|edit|mix`: edit regions score fewer pixels, so a step costs less).
"""

from __future__ import annotations

import argparse
import time

import torch

from fractal_studio.devices import autocast_for, pick_device
from fractal_studio.model import FractalModel, preset
from fractal_studio.training.edit_masks import MASK_STYLES, training_regions


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="fmnist_mar_in32")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--steps", type=int, default=5, help="timed steps")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps first")
    parser.add_argument("--classes", type=int, default=10, help="class_num (1 = unconditional)")
    parser.add_argument("--threads", type=int, help="torch.set_num_threads")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                        help="config override, e.g. dropout=0")
    parser.add_argument("--masks", choices=MASK_STYLES, default="paper")
    parser.add_argument("--bf16", action="store_true", help="bf16 autocast on the CPU too")
    parser.add_argument("--compare", action="store_true",
                        help="time fp32 vs bf16 and the three mask styles in one run")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = pick_device(args.device)
    changes = {k: float(v) for k, v in (item.split("=", 1) for item in args.set)}
    config = preset(args.preset, class_num=args.classes, **changes)
    torch.manual_seed(0)
    model = FractalModel(config).to(device).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    res = config.resolution
    images = torch.randint(0, 256, (args.batch_size, 3, res, res), dtype=torch.uint8, device=device)
    labels = torch.randint(0, args.classes, (args.batch_size,), device=device) if args.classes > 1 else \
        torch.full((args.batch_size,), -1, device=device)

    def autocast():
        if args.bf16 and device.type == "cpu":
            return torch.autocast("cpu", dtype=torch.bfloat16)
        return autocast_for(device, training=True)

    def step():
        unknown = training_regions(args.masks, args.batch_size, res, device)
        with autocast():
            loss = model.loss(images, labels, unknown=unknown).mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()

    def images_per_second() -> float:
        for _ in range(args.warmup):
            step()
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        for _ in range(args.steps):
            step()
        if device.type == "cuda":
            torch.cuda.synchronize()
        return args.batch_size * args.steps / (time.perf_counter() - start)

    params = sum(p.numel() for p in model.parameters())
    print(f"{config.name} ({params / 1e6:.2f}M params, {res}x{res}, dropout {config.dropout}) on {device}, "
          f"{torch.get_num_threads()} thread(s), batch {args.batch_size}")
    settings = [(args.bf16, args.masks)]
    if args.compare:
        settings = [(False, "paper"), (True, "paper"), (False, "edit"), (False, "mix")]
    baseline = None
    for bf16, masks in settings:
        args.bf16, args.masks = bf16, masks
        rate = images_per_second()
        baseline = baseline or rate
        print(f"  {'bf16' if bf16 else 'fp32'}, masks {masks}: {rate:.1f} images/s ({rate / baseline:.2f}x)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
