"""`fractal-studio convert SRC.pth DST.safetensors`: the authors' checkpoints into our format."""

from __future__ import annotations

import argparse
import logging
import time


def add_parser(subparsers, name: str) -> None:
    parser = subparsers.add_parser(name, help="convert a published .pth checkpoint to .safetensors",
                                   description="Convert one of the paper's checkpoints (checkpoint-last.pth) "
                                               "into a self-describing .safetensors model file.")
    parser.add_argument("src", help="the authors' checkpoint (.pth)")
    parser.add_argument("dst", help="the .safetensors file to write")
    parser.add_argument("--config", help="preset name or config.json (default: from the checkpoint's args)")
    parser.add_argument("--class-names", help="a text file with one class name per line")
    parser.add_argument("--overwrite", action="store_true", help="overwrite DST if it exists")
    # --force was this option's first name; it still works, unlisted, like every other --overwrite.
    parser.add_argument("--force", dest="overwrite", action="store_true", help=argparse.SUPPRESS)
    parser.set_defaults(run=run)


def run(args) -> int:
    from fractal_studio.errors import UserError
    from fractal_studio.model.convert import convert_checkpoint
    from fractal_studio.untrusted import check_outputs, check_path

    dst = check_path(args.dst, "DST")
    src = check_path(args.src, "checkpoint")
    if dst.exists() and not args.overwrite:
        raise UserError(f"{dst} already exists; pass --overwrite to replace it")
    if dst.suffix != ".safetensors":
        raise UserError(f"the output file should end in .safetensors, got {dst.name}")
    check_outputs([("DST", dst)], [("checkpoint", src), ("--config", args.config),
                                   ("--class-names", args.class_names)])
    start = time.perf_counter()
    config = convert_checkpoint(src, dst, args.config, args.class_names,
                                log=logging.getLogger(__name__).info)
    print(f"converted {args.src} -> {dst} ({config.name}, {len(config.generators)} levels + head, "
          f"{config.class_num} classes) in {time.perf_counter() - start:.1f}s")
    return 0
