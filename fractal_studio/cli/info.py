"""`fractal-studio info FILE`: a model's configuration, or the generation record in an exported PNG."""

from __future__ import annotations

from pathlib import Path


def add_parser(subparsers, name: str) -> None:
    parser = subparsers.add_parser(name, help="describe a model file or show an exported PNG's parameters")
    parser.add_argument("file", help="a .safetensors model, the name of a bundled or installed model, or a "
                                     "PNG written by fractal-studio")
    parser.set_defaults(run=run)


def run(args) -> int:
    from fractal_studio.untrusted import check_path

    path = check_path(args.file, "file")
    if path.suffix.lower() == ".png":
        print_png_record(path)
    else:
        from fractal_studio.model.catalog import resolve_model

        print_model(path if path.exists() else resolve_model(args.file))
    return 0


def print_model(path: Path) -> None:
    from fractal_studio.model.weights import check_state_dict, file_hash, read_config, read_header
    from fractal_studio.untrusted import printable

    header, metadata = read_header(path)
    config = read_config(path)
    # Every tensor the configuration has, with its shape, and no other (the names are counted below);
    # the data types and values are checked where the weights are loaded.
    check_state_dict({name: tuple(entry["shape"]) for name, entry in header.items()}, config, str(path))
    counts = parameter_counts(header)
    print(f"model:       {printable(path)}")
    print(f"sha256:      {file_hash(path)}")
    # Names come from the file: printed without their control characters (escape sequences).
    origin = metadata.get("converted_from")
    origin = "" if origin is None else f" (converted from {printable(origin)})"
    print(f"name:        {printable(config.name)}{origin}")
    print(f"resolution:  {config.resolution}x{config.resolution}")
    print(f"conditions:  num_conds={config.num_conds}, guiding_pixel={config.guiding_pixel}")
    for index, level in enumerate(config.levels):
        kind = {"ar": "AR ", "mar": "MAR", "head": "pixel head"}[level.kind]
        print(f"level {index}:     {kind} size {level.size:>3}, width {level.width}, depth {level.depth}, "
              f"heads {level.heads}: {counts.get(index, 0):,} parameters")
    print(f"parameters:  {sum(counts.values()):,}")
    s = config.sampling
    print(f"sampling:    iterations {','.join(map(str, s.iterations))}, cfg {s.cfg} ({s.cfg_schedule}), "
          f"temperature {s.temperature:g} (divides logits), spread {s.spread:g}, "
          f"filter {s.filter_threshold:g}")
    if s.hole_depth is not None:
        print(f"work scale:  auto downscales until no hole is deeper than {s.hole_depth:g} model pixel(s)")
    if s.detail_spread is not None:
        steps = ",".join(map(str, s.detail_iterations or s.iterations))
        lock = "off" if s.detail_lock is None else f"{s.detail_lock:g} px"
        print(f"detail:      coarse to fine, finer scales at spread {s.detail_spread:g}, iterations {steps}, "
              f"shade lock {lock}; layout the mean of {s.layout_samples} sample(s)")
        if s.guide_classical is not None:
            print(f"guides:      {s.guide_classical:.0%} a classical continuation (Navier-Stokes) of the "
                  f"known pixels, the rest the model's fill")
    if config.conditional:
        names = ", ".join(f"{i}: {printable(config.class_name(i))}" for i in range(min(config.class_num, 10)))
        more = f" … ({config.class_num} classes)" if config.class_num > 10 else ""
        print(f"classes:     {names}{more}")
    else:
        print("classes:     none (unconditional model)")


def parameter_counts(header: dict) -> dict[int, int]:
    """Parameters per level index; the class embedding counts with level 0, the head with the last.
    The names are the model's own (print_model checks them against the configuration first)."""
    import math

    counts: dict[int, int] = {}
    last = 1 + max((int(k.split(".")[1]) for k in header if k.startswith("levels.")), default=-1)
    for key, entry in header.items():
        if key.startswith("levels."):
            index = int(key.split(".")[1])
        elif key.startswith("head."):
            index = last
        else:
            index = 0
        counts[index] = counts.get(index, 0) + math.prod(entry["shape"])
    return counts


def print_png_record(path: Path) -> None:
    from fractal_studio.editing.imageio import read_png_metadata
    from fractal_studio.untrusted import printable

    record = read_png_metadata(path)
    if not record:
        print(f"{printable(path)}: no fractal-studio generation record")
        return
    print(f"{printable(path)}:")
    for key, value in record.items():  # any tool can write text chunks: no escape sequence is printed
        print(f"  {printable(key)}: {printable(value)}")
