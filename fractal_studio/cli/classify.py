"""`fractal-studio classify PATH...`: which of the model's classes each image is, by the model's own
likelihoods.

Bayes with a uniform prior over the classes: each class's probability is proportional to the image's
likelihood given that class, estimated for MAR levels over random masking orders (the same orders for
every class). Images are brought to the model's input the way its training data were (the
Fashion-MNIST model: grey, 28x28 padded to 32; otherwise the centred square, as `likelihood`).
`unusual`: the image's bits/dim under the mixture of the classes is above the threshold that the model
file records from its own held-out data (see the model's card).
"""

from __future__ import annotations

import json


def add_parser(subparsers, name: str) -> None:
    from fractal_studio.cli import common

    parser = subparsers.add_parser(name, help="which of the model's classes images are (its likelihoods)",
                                   description=" ".join(__doc__.split("\n\n")[1:]).replace("\n", " "))
    parser.add_argument("paths", nargs="+", metavar="PATH", help="images, or folders of images")
    parser.add_argument("--model", help=f"a class-conditional .safetensors model file or a model name "
                                        f"(default {common.DEFAULT_MODEL})")
    parser.add_argument("--orders", type=int, default=8,
                        help="random masking orders averaged per image for MAR models (default 8)")
    parser.add_argument("--top", type=int, default=3, help="classes printed per image (default 3)")
    parser.add_argument("--json", action="store_true",
                        help="print a JSON list, one object per image: path, class_id, class, probability "
                             "(the most probable class), bits_per_dim (under the mixture of the classes, "
                             "uniform prior), unusual (true, false, or null when the model records no "
                             "threshold), top (the --top classes)")
    parser.add_argument("--device", default="auto", help="auto|cpu|cuda|mps (default auto)")
    parser.add_argument("--threads", type=int, help="CPU threads for torch (default: torch's choice)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the masking orders (default 0)")
    parser.set_defaults(run=run)


def run(args) -> int:
    from fractal_studio.cli import common
    from fractal_studio.cli.likelihood import image_paths
    from fractal_studio.editing.classify import class_results
    from fractal_studio.editing.imageio import load_image
    from fractal_studio.errors import UserError
    from fractal_studio.model.catalog import resolve_model
    from fractal_studio.model.classify import read_typicality

    common.check_seed(args.seed)
    if not 1 <= args.orders <= 10_000:
        raise UserError(f"--orders must be between 1 and 10000, got {args.orders}")
    if args.top < 1:
        raise UserError(f"--top must be at least 1, got {args.top}")
    paths = image_paths(args.paths)
    model_path = resolve_model(args.model)
    model, _ = common.load_model_file(model_path, args.device, args.threads)
    config = model.config
    if not config.conditional:
        raise UserError(f"{config.name} has no classes: classify needs a class-conditional model")
    if config.guiding_pixel:
        raise UserError(f"{config.name} predicts guiding pixels: it defines no likelihood to classify by")
    typicality = read_typicality(model_path)
    rows = []
    for path in paths:
        pixels = load_image(path).pixels
        result = class_results(model, [pixels], typicality, args.orders, args.seed)[0]
        rows.append(_row(path, result, args.top))
        if not args.json:
            print(_line(rows[-1]))
    if args.json:
        print(json.dumps(rows, indent=2))
    elif typicality is None:
        print(f"({config.name} records no held-out bits/dim: unusual images are not flagged)")
    return 0


def _row(path, result, top: int) -> dict:
    class_id, name, probability = result.best
    return {"path": str(path), "class_id": class_id, "class": name, "probability": probability,
            "bits_per_dim": result.bits_per_dim, "unusual": result.unusual,
            "top": [{"class_id": c, "class": n, "probability": p} for c, n, p in result.ranked[:top]]}


def _line(row: dict) -> str:
    classes = ", ".join(f"{entry['class']} {entry['probability']:.1%}" for entry in row["top"])
    note = "  UNUSUAL: unlike the model's training data" if row["unusual"] else ""
    return f"{row['path']}: {classes} ({row['bits_per_dim']:.3f} bits/dim){note}"
