"""`fractal-studio train`: train a model on the built-in data or an image folder.

    fractal-studio train --data fashion-mnist --preset fmnist_mar_in32 \
        --out models/fashion_mnist.safetensors --minutes 35 --batch-size 32

Also runs under `torchrun --nproc_per_node=K -m fractal_studio train ...` (DistributedDataParallel).
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path


def add_parser(subparsers, name: str) -> None:
    parser = subparsers.add_parser(
        name, help="train a model (built-in photos, Fashion-MNIST or a folder of images)",
        description="Train a fractal model and save it as .safetensors. The built-in data sources "
                    "are downloaded into the data cache on first use. Progress goes to stderr.")
    parser.add_argument("--data", required=True,
                        help="'photos', 'fashion-mnist' or a folder of images (class subfolders = classes)")
    parser.add_argument("--preset", required=True,
                        help="model preset, e.g. fmnist_mar_in32, photo_mar_in64, small_mar_in32")
    parser.add_argument("--out", required=True, help="the .safetensors file to write")
    length = parser.add_mutually_exclusive_group()
    length.add_argument("--steps", type=int, help="number of optimizer steps")
    length.add_argument("--minutes", type=float, help="wall time to train for (the step count is "
                                                      "estimated after a few steps)")
    parser.add_argument("--batch-size", type=int, default=32, help="global batch size (default 32)")
    parser.add_argument("--lr", type=float, default=1e-3, help="peak learning rate (default 1e-3)")
    parser.add_argument("--weight-decay", type=float, default=0.05)
    parser.add_argument("--warmup", type=float, default=0.05,
                        help="warmup: share of the steps if < 1, else a number of steps (default 0.05)")
    parser.add_argument("--min-lr-ratio", type=float, default=0.1,
                        help="the cosine decays to lr times this (default 0.1)")
    parser.add_argument("--clip", type=float, default=1.0, help="gradient norm clip, 0 = off (default 1)")
    parser.add_argument("--ema", type=float, default=0.0,
                        help="EMA decay, e.g. 0.999 (default 0 = off); the EMA weights are saved")
    parser.add_argument("--workers", type=int, default=0, help="data loading processes (default 0)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--resume", action="store_true",
                        help="continue from OUT's training state (<out>.state.pt)")
    # (training.edit_masks.MASK_STYLES, spelled out: importing it would load torch for --help)
    parser.add_argument("--masks", choices=("paper", "edit", "mix", "guided"), default="paper",
                        help="what the model learns to fill: 'paper' (the authors' random masks: "
                             "generation from nothing), 'edit' (brush strokes, boxes, outpaint strips, "
                             "uncrop frames in a mostly known window), 'mix' (half each) or 'guided' (edit "
                             "shapes, half with a coarse fill's guide pixels inside: for coarse-to-fine "
                             "fills; default paper)")
    parser.add_argument("--init-from", metavar="MODEL",
                        help="start from this .safetensors model's weights (same preset and classes) "
                             "instead of random ones: a new run (new optimizer and schedule)")
    parser.add_argument("--device", default="auto", help="auto|cpu|cuda|mps (default auto)")
    parser.add_argument("--threads", type=int, help="CPU threads for torch (default: torch's choice)")
    parser.add_argument("--checkpoint-minutes", type=float, default=10.0,
                        help="minutes between checkpoints (default 10)")
    parser.add_argument("--eval-every", type=int, default=200,
                        help="steps between held-out bits/dim evaluations (default 200; 0 = at the end)")
    parser.add_argument("--eval-count", type=int, default=256, help="held-out images (default 256)")
    parser.add_argument("--class-names", help="class names: a text file (one per line) or a comma-"
                                              "separated list; default: from the dataset")
    parser.add_argument("--unconditional", action="store_true", help="ignore the dataset's classes")
    parser.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                        help="override a config field: dropout, label_drop_prob, r_weight")
    parser.add_argument("--data-cache", help="the data cache folder (default $FRACTAL_STUDIO_DATA or the "
                                             "user cache folder's data/: ~/.cache/fractal-studio/data "
                                             "on Linux)")
    parser.set_defaults(run=run)


def _class_names_file(value: str | None) -> Path | None:
    """--class-names as a file to read, or None when it is a list of names (or not given)."""
    if value is None or ("," in value and not os.path.lexists(value)):
        return None
    from fractal_studio.untrusted import check_path

    path = check_path(value, "--class-names")
    return path if path.exists() else None


def _class_names(value: str | None) -> tuple[str, ...] | None:
    from fractal_studio.untrusted import MAX_CLASS_NAMES_BYTES, read_text

    if value is None:
        return None
    path = _class_names_file(value)
    if path is not None:
        text = read_text(path, "--class-names", MAX_CLASS_NAMES_BYTES)
        names = [line.strip() for line in text.splitlines()]
    else:
        names = [part.strip() for part in value.split(",")]
    return tuple(n for n in names if n)


def options_from_args(args: argparse.Namespace):
    from fractal_studio.errors import UserError
    from fractal_studio.training.options import TrainOptions, check_options

    overrides = {}
    for item in args.set:
        if "=" not in item:
            raise UserError(f"--set expects FIELD=VALUE, got {item!r}")
        key, value = item.split("=", 1)
        try:
            overrides[key.strip()] = float(value)
        except ValueError:
            raise UserError(f"--set {key}: {value!r} is not a number") from None
    if args.steps is None and args.minutes is None:
        raise UserError("say how long to train: --steps N or --minutes M")
    from fractal_studio.cli.common import check_seed, check_threads

    check_threads(args.threads)
    check_seed(args.seed)
    from fractal_studio.training.options import state_path
    from fractal_studio.untrusted import check_outputs, check_path

    out = check_path(args.out, "--out")
    if args.data not in ("photos", "fashion-mnist"):
        check_path(args.data, "--data")
    init_from = None if args.init_from is None else check_path(args.init_from, "--init-from")
    # --resume reads OUT's own training state: that one is both, by design.
    check_outputs([("--out", out), ("--out's training state", state_path(out))],
                  [("--init-from", init_from), ("--class-names", _class_names_file(args.class_names))])
    opts = TrainOptions(
        data=args.data, preset=args.preset, out=args.out, steps=args.steps, minutes=args.minutes,
        batch_size=args.batch_size, lr=args.lr, weight_decay=args.weight_decay, warmup=args.warmup,
        min_lr_ratio=args.min_lr_ratio, clip=args.clip, ema=args.ema, workers=args.workers, seed=args.seed,
        resume=args.resume, device=args.device, checkpoint_minutes=args.checkpoint_minutes,
        eval_every=args.eval_every, eval_count=args.eval_count, class_names=_class_names(args.class_names),
        overrides=overrides, unconditional=args.unconditional, cache_dir=args.data_cache,
        threads=args.threads, masks=args.masks, init_from=args.init_from,
    )
    check_options(opts)
    return opts


def run(args) -> int:
    from fractal_studio.training.loop import train

    opts = options_from_args(args)
    summary = train(opts)
    bpd = summary["heldout_bpd"]
    if bpd is not None:
        print(f"trained {summary['steps']} steps in {summary['wall_seconds'] / 60:.1f} min; "
              f"held-out {bpd:.4f} bits/dim; wrote {opts.out}")
    return 0
