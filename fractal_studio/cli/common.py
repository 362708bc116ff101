"""Options and helpers shared by the editing commands (and reusable by the app).

- resolve_model_path(name_or_path): a .safetensors path, or the name of a bundled or installed model.
- match_class(config, text): a class id from "3", "tabby" or a unique prefix such as "tab".
"""

from __future__ import annotations

import argparse
import difflib
import re
from dataclasses import fields
from pathlib import Path

from fractal_studio.cli.output import Progress
from fractal_studio.editing.options import OPTIONS, EditOptions
from fractal_studio.errors import UserError
from fractal_studio.model.catalog import DEFAULT_MODEL, MODELS_DIR, resolve_model
from fractal_studio.untrusted import check_path, printable


# -------------------------------------------------------------------------------------- models
def resolve_model_path(name_or_path: str | None = None) -> Path:
    """The model file for --model: a path, or a bundled or installed model's name (default photo_64)."""
    return resolve_model(name_or_path, MODELS_DIR)  # MODELS_DIR read here, so tests can point it elsewhere


def load_model_file(path: Path, device_choice: str = "auto", threads: int | None = None):
    """(model, sha256 of the file) on the chosen device; every problem is a UserError."""
    from fractal_studio.devices import pick_device
    from fractal_studio.model.weights import file_hash, load_model

    device = pick_device(device_choice)
    if threads is not None:
        check_threads(threads)
        import torch

        torch.set_num_threads(threads)
    try:
        model = load_model(path, device)
    except UserError:
        raise
    except (ValueError, KeyError, OSError, RuntimeError) as error:
        raise UserError(f"{path} is not a valid fractal-studio model: {_first_line(error)}") from None
    return model, file_hash(path)


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return text[0] if text else type(error).__name__


# ------------------------------------------------------------------------------------- classes
def class_names(config) -> list[str]:
    return [config.class_name(i) for i in range(config.class_num)]


def match_class(config, text: str | int | None) -> int | None:
    """A class id from an id or a name (case-insensitive; a unique prefix is enough); None for None."""
    if text is None:
        return None
    if isinstance(text, int):
        text = str(text)
    query = text.strip()
    if not config.conditional:
        raise UserError(f"this model ({config.name}) is unconditional: it has no classes, "
                        f"so leave out --class")
    # ASCII digits only: "²" and "٣" pass str.isdigit() but int() refuses them.
    if re.fullmatch(r"-?[0-9]+", query):
        class_id = int(query)
        if not 0 <= class_id < config.class_num:
            raise UserError(f"class {class_id} is out of range: this model has classes "
                            f"0..{config.class_num - 1}")
        return class_id
    names = class_names(config)
    lowered = [n.lower() for n in names]
    q = query.lower()
    if not q:
        raise UserError("--class is empty; give a class id or name")
    exact = [i for i, n in enumerate(lowered) if n == q]
    if len(exact) == 1:
        return exact[0]
    prefixed = [i for i, n in enumerate(lowered) if n.startswith(q)]
    if len(prefixed) == 1:
        return prefixed[0]
    if len(prefixed) > 1:
        shown = ", ".join(repr(names[i]) for i in prefixed[:8]) + (" …" if len(prefixed) > 8 else "")
        raise UserError(f"class {query!r} is ambiguous: it could be {shown}; type more of the name")
    close = difflib.get_close_matches(q, lowered, n=5, cutoff=0.5)
    if close:
        suggestions = ", ".join(repr(names[lowered.index(c)]) for c in close)
        raise UserError(f"unknown class {query!r}; did you mean {suggestions}?")
    raise UserError(f"unknown class {query!r}; this model's classes are 0..{config.class_num - 1} "
                    f"(see `fractal-studio info MODEL`)")


# ------------------------------------------------------------------------------------- options
def add_model_options(parser) -> None:
    parser.add_argument("--model", help=f"a .safetensors model file or the name of a bundled or installed "
                                        f"model (default {DEFAULT_MODEL})")
    parser.add_argument("--device", default="auto", help="auto|cpu|cuda|mps (default auto)")
    parser.add_argument("--threads", type=int, help="CPU threads for torch (default: torch's choice)")
    add_options(parser, "model")


def add_sampling_options(parser, candidates: bool = True, class_required: bool = False) -> None:
    add_options(parser, "sampling", skip=() if candidates else ("candidates",),
                required=("class_id",) if class_required else ())


def add_edit_options(parser) -> None:
    add_options(parser, "edit")
    parser.add_argument("--overwrite", action="store_true", help="allow writing over the input image")
    parser.add_argument("--vary-detail-of", metavar="RESULT.png",
                        help="a result this command wrote before from the same image, mask and model: "
                             "that candidate again with its layout kept and new detail (its record "
                             "gives the options; --seed seeds the new detail)")


def option_flag(name: str) -> str:
    """The command-line flag of an EditOptions field (--work-scale for work_scale)."""
    return OPTIONS[name].flag or "--" + name.replace("_", "-")


def add_options(parser, group: str, skip=(), required=()) -> None:
    """The EditOptions fields of `group` (their `cli`) as options: flag, type, range and help come
    from the field's declaration (editing/options.py); the value lands in args under the field's name."""
    defaults = {f.name: f.default for f in fields(EditOptions)}
    for name, option in OPTIONS.items():
        if option.cli != group or name in skip:
            continue
        default = defaults[name]
        shown = "the model's" if option.from_model else ("none" if default is None else _shown(default))
        if name == "margin":
            shown = "half a window"
        kwargs = {"dest": name, "help": f"{option.help} (default: {shown})"}
        if option.kind == "bool":
            kwargs.update(action=argparse.BooleanOptionalAction, default=default)
        elif option.kind == "choice" and option.cli:
            kwargs.update(choices=option.choices, default=default)
        elif option.kind in ("int", "float"):
            kwargs.update(type=int if option.kind == "int" else float, default=default)
        else:  # a class (an id or a name), iterations ("64,16"), a work scale: text the commands parse
            kwargs.update(default=default)
        if option.metavar:
            kwargs["metavar"] = option.metavar
        if name in required:
            kwargs["required"] = True
        parser.add_argument(option_flag(name), **kwargs)


def _shown(value) -> str:
    if isinstance(value, bool):
        return "on" if value else "off"
    return str(value)


def options_from_args(args, **given) -> EditOptions:
    """The EditOptions of the command's options (those it has), with `given` fields on top
    (the class once matched, iterations once parsed), checked: a UserError names the flag."""
    names = {f.name for f in fields(EditOptions)}
    values = {name: getattr(args, name) for name in names if hasattr(args, name)}
    values.pop("class_id", None)  # text until the model is loaded (match_class)
    values["iterations"] = parse_iterations(values.get("iterations"))
    values.update(given)
    flags = {name: option_flag(name) for name in names}
    if "candidates" in given and not hasattr(args, "candidates"):
        flags["candidates"] = "--count"
    return EditOptions(**values).validate(flags)


MAX_THREADS = 1024  # beyond this OpenMP fails (a segfault in libgomp at 100000)
MAX_TORCH_SEED = 2**63 - 1  # torch.manual_seed takes a signed 64-bit seed (likelihood's, training's)


def check_threads(threads: int | None) -> None:
    if threads is not None and not 1 <= threads <= MAX_THREADS:
        raise UserError(f"--threads must be between 1 and {MAX_THREADS}, got {threads}")


def check_seed(seed: int) -> None:
    """A seed given to torch directly (an edit's seed is an EditOptions field: its own range)."""
    if not 0 <= seed <= MAX_TORCH_SEED:
        raise UserError(f"--seed must be between 0 and 2**63 - 1, got {seed}")


def parse_iterations(text: str | None) -> tuple[int, ...] | None:
    """--iterations as a tuple (None when not given); the app's Iterations box uses the same parser."""
    from fractal_studio.sampling.validation import parse_iterations as parse  # torch: not at --help

    return parse(text, option="--iterations")


def parse_ints(text: str, count: int, option: str, example: str) -> tuple[int, ...]:
    try:
        values = tuple(int(part) for part in text.replace(" ", "").split(","))
    except ValueError:
        raise UserError(f"{option} expects {count} whole numbers separated by commas, e.g. {example}; "
                        f"got {text!r}") from None
    if len(values) != count:
        raise UserError(f"{option} expects {count} numbers (e.g. {example}), got {len(values)}")
    return values


def output_paths(out: str, count: int, option: str = "--out") -> list[Path]:
    """OUT.png for one result, OUT-1.png … OUT-N.png for several; the folder must exist."""
    path = check_path(Path(out).expanduser(), option)
    if path.suffix.lower() != ".png":
        raise UserError(f"the output must be a .png file, got {printable(out)!r}")
    if path.is_dir():
        raise UserError(f"{printable(out)} is a folder; give a file name such as "
                        f"{printable(Path(out) / 'result.png')}")
    if not path.parent.is_dir():
        raise UserError(f"the output folder {printable(path.parent)} does not exist; create it first")
    if count == 1:
        return [path]
    return [check_path(path.with_name(f"{path.stem}-{k}{path.suffix}"), option) for k in range(1, count + 1)]


def input_path(path: str | Path, what: str) -> Path:
    """A file the command reads, its name checked (UTF-8, length, no link loop) before any work."""
    return check_path(Path(path).expanduser(), what)


# ------------------------------------------------------------------------------------ progress
class ProgressBar(Progress):
    """An edit's progress (the sampler's events) on the command's progress line (cli/output.py)."""

    def update(self, event) -> None:
        self.step(event.fraction, f"window {event.window}/{event.windows} level {event.level} "
                                  f"step {event.step}/{event.steps}", eta=event.eta)
