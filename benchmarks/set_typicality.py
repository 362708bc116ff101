"""Records in a model file how typical its own held-out data are (for `classify`'s unusual flag),
keeping its weights, configuration and other metadata:

    .venv/bin/python benchmarks/set_typicality.py models/fashion_mnist.safetensors \\
        --held-out 0.8361 --unusual-above 1.3569 --recipe pad --note "..."

The figures come from `benchmarks/classify_accuracy.py --summary` (see the model's card).
"""

from __future__ import annotations

import argparse

from fractal_studio.model.classify import TYPICALITY_KEY, Typicality
from fractal_studio.model.weights import load_model, model_metadata, read_header, write_safetensors

OWN_KEYS = ("format", "format_version", "config", "class_names")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model")
    parser.add_argument("--held-out", type=float, required=True, help="median bits/dim on held-out data")
    parser.add_argument("--unusual-above", type=float, required=True, help="the threshold in bits/dim")
    parser.add_argument("--recipe", default="centre", choices=("centre", "pad"))
    parser.add_argument("--note", default="")
    args = parser.parse_args(argv)
    _, metadata = read_header(args.model)
    model = load_model(args.model)
    extra = {key: value for key, value in metadata.items() if key not in OWN_KEYS}
    extra[TYPICALITY_KEY] = Typicality(args.held_out, args.unusual_above, args.recipe, args.note).to_json()
    write_safetensors(args.model, model.state_dict().items(), model_metadata(model.config, **extra))
    print(f"{args.model}: {extra[TYPICALITY_KEY]}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
