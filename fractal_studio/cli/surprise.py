"""`fractal-studio surprise IMAGE --out MAP.png`: where the model is surprised by an image.

MAP.png is a greyscale picture the size of IMAGE, brighter where the model spends more bits on a
pixel given what is around it (editing/surprise.py): black is 0 and white is SCALE_BITS bits per
dimension, as its metadata says. With --mask-out, MASK.png is white where the surprise is above
--threshold bits per dimension: a mask to inpaint (dust, blemishes, stray objects, pasted patches).
"""

from __future__ import annotations

import logging

from fractal_studio.cli.output import Progress

SCALE_BITS = 12.0  # white in the map (a uniformly random value costs 8 bits; a surprising one more)

log = logging.getLogger(__name__)


def add_parser(subparsers, name: str) -> None:
    from fractal_studio.cli import common

    parser = subparsers.add_parser(name, help="a map of how surprised the model is by each pixel",
                                   description=__doc__.split("\n\n")[1].replace("\n", " "))
    parser.add_argument("image")
    parser.add_argument("--out", required=True, help="the surprise map to write (PNG)")
    parser.add_argument("--mask-out", help="also write a mask: white where the surprise is above --threshold")
    parser.add_argument("--threshold", type=float, help="bits per dimension (needed with --mask-out)")
    parser.add_argument("--model", help=f"a .safetensors model file or a model name "
                                        f"(default {common.DEFAULT_MODEL})")
    parser.add_argument("--orders", type=int, default=1,
                        help="random top-level maskings averaged (default 1)")
    parser.add_argument("--work-scale", default="auto",
                        help="auto (default: at most 8 windows along the long side), native or a "
                             "downscale factor")
    parser.add_argument("--device", default="auto", help="auto|cpu|cuda|mps (default auto)")
    parser.add_argument("--threads", type=int, help="CPU threads for torch (default: torch's choice)")
    parser.add_argument("--overwrite", action="store_true", help="allow writing over the input image")
    parser.set_defaults(run=run)


def run(args) -> int:
    import math

    import numpy as np

    from fractal_studio.cli import common
    from fractal_studio.editing.imageio import load_image, save_pngs
    from fractal_studio.editing.planning import parse_work_scale
    from fractal_studio.editing.surprise import surprise_map
    from fractal_studio.errors import UserError
    from fractal_studio.model.catalog import resolve_model
    from fractal_studio.untrusted import check_outputs

    if (args.mask_out is None) != (args.threshold is None):
        raise UserError("--mask-out and --threshold go together: the mask is where the surprise is above it")
    if args.threshold is not None and not math.isfinite(args.threshold):
        raise UserError(f"--threshold must be a number of bits per dimension, got {args.threshold}")
    for option, path in (("--out", args.out), ("--mask-out", args.mask_out)):
        if path is not None and not str(path).lower().endswith(".png"):
            raise UserError(f"{option} writes a PNG: give a file name ending in .png, got {path}")
    if not 1 <= args.orders <= 1000:
        raise UserError(f"--orders must be between 1 and 1000, got {args.orders}")
    scale = parse_work_scale(args.work_scale)
    source = common.input_path(args.image, "image")
    model_path = resolve_model(args.model)
    outputs = [(option, common.output_paths(path, 1, option)[0]) for option, path in
               (("--out", args.out), ("--mask-out", args.mask_out)) if path is not None]
    check_outputs(outputs, [("--model", model_path)], source=source, overwrite=args.overwrite)
    image = load_image(source).pixels
    model, model_hash = common.load_model_file(model_path, args.device, args.threads)

    line = Progress(args.quiet)
    try:
        bits, used = surprise_map(model, image, orders=args.orders, work_scale=scale,
                                  progress=lambda fraction: line.step(fraction, "surprise map"))
    finally:
        line.done()
    grey = np.clip(np.rint(bits / SCALE_BITS * 255), 0, 255).astype(np.uint8)
    record = {"software": "fractal-studio", "model": model.config.name, "model_sha256": model_hash,
              "surprise_scale": f"0 = 0 bits per dimension, 255 = {SCALE_BITS:g}",
              "orders": str(args.orders), "work_scale": f"{used:g}",
              "mean_bits_per_dim": f"{float(bits.mean()):.4f}",
              "max_bits_per_dim": f"{float(bits.max()):.4f}"}
    pictures = [(outputs[0][1], grey, record)]
    if args.mask_out is not None:
        selected = bits > args.threshold
        pictures.append((outputs[1][1], np.where(selected, 255, 0).astype(np.uint8),
                         {**record, "threshold_bits_per_dim": f"{args.threshold:g}",
                          "selected_share": f"{float(selected.mean()):.4f}"}))
    save_pngs(pictures, source=source, overwrite_source=args.overwrite)
    for path, _, _ in pictures:
        print(path)
    log.info("surprise: mean %.2f, max %.2f bits per dimension (work scale %g)",
             bits.mean(), bits.max(), used)
    return 0
