"""Sets a model file's sampling defaults (what the editor uses when an option is left out), keeping
its weights: how the bundled models' tuned defaults get into their files after training.

    .venv/bin/python benchmarks/set_sampling.py models/photo_64.safetensors \\
        spread=0.05 hole_depth=1 detail_spread=0.3 detail_iterations=4,4,4 detail_lock=2 layout_samples=4

Each KEY=VALUE is a field of the model's `sampling` (model/config.py SamplingDefaults); an empty
value clears an optional field. `trained_masks=STYLE` records which masks the model learnt from (for
the surprise map; ModelConfig.trained_masks). The file is replaced atomically.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import tempfile
from pathlib import Path

from fractal_studio.model.weights import load_model, save_model


def parse_value(text: str):
    if text == "":
        return None
    if "," in text:
        return tuple(int(part) for part in text.split(","))
    try:
        return float(text)  # every scalar field is a number (cfg_schedule excepted)
    except ValueError:
        return text


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model")
    parser.add_argument("settings", nargs="+", metavar="KEY=VALUE")
    args = parser.parse_args(argv)
    model = load_model(args.model)
    fields = {f.name for f in dataclasses.fields(model.config.sampling)}
    changes, config_changes = {}, {}
    for item in args.settings:
        key, _, value = item.partition("=")
        if key == "trained_masks":
            config_changes[key] = value
            continue
        if key not in fields:
            parser.error(f"unknown sampling field {key!r}; the fields are {', '.join(sorted(fields))}")
        changes[key] = parse_value(value)
    if "iterations" in changes or "detail_iterations" in changes:
        for key in ("iterations", "detail_iterations"):
            if isinstance(changes.get(key), int):
                changes[key] = (changes[key],)
    if isinstance(changes.get("layout_samples"), float) and changes["layout_samples"].is_integer():
        changes["layout_samples"] = int(changes["layout_samples"])
    sampling = dataclasses.replace(model.config.sampling, **changes)
    model.config = dataclasses.replace(model.config, sampling=sampling, **config_changes)
    model.config.validate()
    target = Path(args.model)
    handle, temporary = tempfile.mkstemp(dir=target.parent, suffix=".tmp")
    os.close(handle)
    try:
        save_model(model, temporary)
        os.replace(temporary, target)
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)
    print(f"{target}: sampling {sampling}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
