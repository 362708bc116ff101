"""`fractal-studio likelihood PATH...`: the model's bits per dimension for images, as in the paper.

Each image is scaled so its shorter side is the model's resolution and cut to the centred square
(the paper's ImageNet preprocessing), then scored with the authors' protocol: exact for AR levels;
for MAR levels each pass masks a uniformly drawn number of random tokens at every level and scores
them, an unbiased estimate of the average over masking orders, and `--orders` passes are averaged.
Lower is better: it is the cost, in bits, of coding each of the image's R, G, B values with the model.
"""

from __future__ import annotations

from pathlib import Path


def add_parser(subparsers, name: str) -> None:
    from fractal_studio.cli import common

    parser = subparsers.add_parser(name, help="the model's bits/dim for images (the paper's likelihood)",
                                   description=__doc__.split("\n\n")[1].replace("\n", " "))
    parser.add_argument("paths", nargs="+", metavar="PATH", help="images, or folders of images")
    parser.add_argument("--model", help=f"a .safetensors model file or a model name (default "
                                        f"{common.DEFAULT_MODEL})")
    parser.add_argument("--orders", type=int, default=8,
                        help="random masking orders averaged per image for MAR models (default 8)")
    parser.add_argument("--class", dest="class_", metavar="ID_OR_NAME",
                        help="score given this class (default: without a class)")
    parser.add_argument("--device", default="auto", help="auto|cpu|cuda|mps (default auto)")
    parser.add_argument("--threads", type=int, help="CPU threads for torch (default: torch's choice)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the masking orders (default 0)")
    parser.set_defaults(run=run)


def image_paths(paths: list[str]) -> list[Path]:
    """The images named or found (recursively, sorted) in the folders named; a UserError for none."""
    from fractal_studio.errors import UserError
    from fractal_studio.training.data import IMAGE_EXTENSIONS

    found: list[Path] = []
    for text in paths:
        path = Path(text)
        if path.is_dir():
            found.extend(sorted(p for p in path.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS
                                and p.is_file() and not p.name.startswith(".")))
        elif path.is_file():
            found.append(path)
        else:
            raise UserError(f"{text} does not exist")
    if not found:
        raise UserError(f"no images ({', '.join(IMAGE_EXTENSIONS)}) in {', '.join(paths)}")
    return found


def run(args) -> int:
    import numpy as np
    import torch

    from fractal_studio.cli import common
    from fractal_studio.editing.imageio import load_image
    from fractal_studio.editing.model_input import centre_square
    from fractal_studio.errors import UserError
    from fractal_studio.model.catalog import resolve_model
    from fractal_studio.model.weights import read_config

    common.check_seed(args.seed)
    if not 1 <= args.orders <= 10_000:
        raise UserError(f"--orders must be between 1 and 10000, got {args.orders}")
    common.check_threads(args.threads)
    named = [str(common.input_path(path, "PATH")) for path in args.paths]
    paths = [common.input_path(path, "the image") for path in image_paths(named)]
    model_path = resolve_model(args.model)
    # The model's header gives the size the images are cut to: every image is decoded and checked
    # (a damaged or truncated file fails here) before the weights are loaded.
    config = read_config(model_path)
    if config.guiding_pixel:
        raise UserError(f"{config.name} predicts guiding pixels: the paper defines no bits/dim for it")
    class_id = common.match_class(config, args.class_)
    squares = [centre_square(load_image(path).pixels, config.resolution) for path in paths]
    model, _ = common.load_model_file(model_path, args.device, args.threads)
    device = model.fake_latent.device
    torch.manual_seed(args.seed)
    orders = 1 if all(level.kind != "mar" for level in config.generators) else args.orders
    scores = []
    for path, pixels in zip(paths, squares, strict=True):
        image = torch.from_numpy(np.ascontiguousarray(pixels)).permute(2, 0, 1).unsqueeze(0).to(device)
        labels = None if class_id is None else torch.tensor([class_id], device=device)
        bits = float(model.bits_per_dim(image, labels, samples=orders)[0])
        scores.append(bits)
        print(f"{path}: {bits:.4f} bits/dim")
    kind = "exact (AR)" if orders == 1 else f"{args.orders} masking orders each"
    print(f"mean over {len(scores)} image{'s' if len(scores) != 1 else ''}: {sum(scores) / len(scores):.4f} "
          f"bits/dim ({config.name}, {config.resolution}x{config.resolution}, {kind})")
    return 0
