"""`fractal-studio gui`: the desktop app (also what runs with no command)."""

from __future__ import annotations


def add_parser(subparsers, name: str) -> None:
    parser = subparsers.add_parser(name, help="open the desktop app (the default)")
    parser.add_argument("image", nargs="?", help="an image to open")
    parser.add_argument("--model", help="a .safetensors model file or the name of a bundled model")
    parser.set_defaults(run=run)


def run(args) -> int:
    from fractal_studio.app.main import launch

    return launch(image=args.image, model=args.model)
