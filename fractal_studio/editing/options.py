"""An edit's options, declared once: each field's type, range, default and help.

`EditOptions` is what every front end builds and the engine runs: the CLI's options
(cli/common.py), the app's parameters and its persisted settings (app/settings.py, app/panels.py),
the sampler's request (engine._resolve) and the PNG record (to_record/from_record) are all made
from the declarations below, not listed again.

    options = EditOptions(cfg=2.0, candidates=4).validate()   # UserError: what is wrong, in words
    settings = options.resolved(model.config)                 # every None filled from the model
    record = settings.to_record()                              # {"cfg": "2", ...}, all strings
    again = EditOptions.from_record(record)                    # validated; UserError if it is not

None in a field marked `from_model` means "the model's default" (the SamplingDefaults field of
the same name); `resolved` fills those, the context margin and the model-dependent checks once.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace

from fractal_studio.devices import PRECISIONS
from fractal_studio.errors import UserError
from fractal_studio.model.config import MAX_CFG, MIN_TEMPERATURE
from fractal_studio.sampling.request import CFG_SCHEDULES
from fractal_studio.untrusted import printable

# The engine derives every later window's seed as crc32(...) + (seed << 32), which torch's 64-bit
# generator seed must hold, and the app's seed box is a Qt spin box (32-bit): 2**31 - 1 fits both,
# so the CLI and the app accept the same seeds.
MAX_SEED = 2**31 - 1
MAX_CANDIDATES = 256  # candidates per run (each an image-sized canvas), or images in `generate --count`
MAX_FEATHER = 256  # blend band in image pixels inside the mask edge
RECORD_VALUE_CHARS = 200  # a record's value longer than this is not one we wrote

REQUIRED = "required"  # Option.older: every record has this field
KINDS = ("int", "float", "bool", "choice", "iterations", "work_scale", "class")


@dataclass(frozen=True)
class Option:
    """One option's declaration (the metadata of an EditOptions field)."""

    kind: str  # one of KINDS
    label: str  # what messages call it ("guidance scale (cfg)")
    help: str  # one line: the CLI's --help and the app's tooltip
    low: float | None = None
    high: float | None = None  # None: no static bound (or one that depends on the model)
    high_open: bool = False  # the range stops short of `high`
    low_note: str = ""  # what the ends mean, in messages: "1 (no guidance)"
    high_note: str = ""
    choices: tuple[str, ...] = ()
    from_model: bool = False  # None takes the model's sampling default of the same name
    record: str = ""  # the PNG record's key (default: the field's name)
    older: object = REQUIRED  # its value in a record written before this option existed
    cli: str = ""  # the commands that offer it: "sampling", "edit" or "model" ("" = not on the command line)
    flag: str = ""  # the CLI's flag (default: --name-with-dashes)
    metavar: str | None = None
    app: bool = False  # the app's parameters panel shows it
    title: str = ""  # the app's row title
    step: float = 1.0  # the app's spin-box step

    def bounds(self) -> str:
        """The range as messages write it: "between 1 (no guidance) and 1000"."""
        low = f"{_number(self.low)}{' ' + self.low_note if self.low_note else ''}"
        if self.high is None:
            return f"at least {low}"
        high = f"{_number(self.high)}{' ' + self.high_note if self.high_note else ''}"
        return f"in [{low}, {high})" if self.high_open else f"between {low} and {high}"

    def contains(self, value: float) -> bool:
        if self.low is not None and value < self.low:
            return False
        if self.high is not None and (value >= self.high if self.high_open else value > self.high):
            return False
        return True


def _number(value: float | None) -> str:
    if value == 2**31 - 1:
        return "2**31 - 1"
    return f"{value:g}" if isinstance(value, float) else str(value)


def _option(default, **declaration):
    return field(default=default, metadata={"option": Option(**declaration)})


@dataclass(frozen=True)
class EditOptions:
    """How to run an edit; None in a `from_model` field takes the model's default."""

    class_id: int | None = _option(
        None, kind="class", label="class", record="class", cli="sampling", flag="--class",
        metavar="ID_OR_NAME", low=0, help="class id or name (case-insensitive; a unique prefix is enough)")
    cfg: float | None = _option(
        None, kind="float", label="guidance scale (cfg)", low=1.0, low_note="(no guidance)", high=MAX_CFG,
        from_model=True, cli="sampling", app=True, title="Guidance", step=0.1,
        help="guidance scale (classifier-free guidance): higher follows the class more")
    cfg_schedule: str | None = _option(
        None, kind="choice", label="cfg schedule", choices=CFG_SCHEDULES, from_model=True, app=True,
        title="Schedule", help="how guidance changes over the steps: constant, or rising linearly")
    temperature: float | None = _option(
        None, kind="float", label="temperature", low=MIN_TEMPERATURE, high=100.0, from_model=True,
        cli="sampling", app=True, title="Temperature", step=0.01,
        help="sampling temperature: lower is more conservative")
    spread: float | None = _option(
        None, kind="float", label="spread", low=0.0, low_note="(each pixel's median)", high=1.0,
        high_note="(the model's distribution)", from_model=True, cli="sampling", app=True, title="Spread",
        step=0.05, help="0..1: draw each pixel from this central share of its distribution; 1 = the "
                        "model's own samples (more detail and specks), lower = smoother, no specks")
    filter_threshold: float | None = _option(
        None, kind="float", label="filter threshold", low=0.0, high=1.0, high_open=True, from_model=True,
        help="pixel values less likely than this are never drawn")
    iterations: tuple[int, ...] | None = _option(
        None, kind="iterations", label="iterations", from_model=True, cli="sampling", app=True,
        title="Iterations", help="steps per generator level, e.g. 64,16")
    seed: int = _option(
        0, kind="int", label="seed", low=0, high=MAX_SEED, cli="sampling", app=True, title="Seed",
        help="random seed; the same seed and settings reproduce a result exactly")
    candidates: int = _option(
        1, kind="int", label="the number of candidates", low=1, high=MAX_CANDIDATES, cli="sampling",
        app=True, title="Candidates",
        help="results to make in one run (the CLI writes OUT-1.png … OUT-N.png)")
    margin: int | None = _option(
        None, kind="int", label="context margin", low=0, cli="edit", app=True, title="Margin",
        help="known context around each window, in model pixels (default: half a window)")
    work_scale: str | float = _option(
        "auto", kind="work_scale", label="work scale", record="work_scale_option", cli="edit",
        help="auto, native (1:1 pixels) or a downscale factor such as 2")
    feather: int = _option(
        0, kind="int", label="feather", low=0, high=MAX_FEATHER, cli="edit", app=True, title="Feather",
        help="blend band in pixels inside the mask edge (0 = hard edge, bit-exact outside)")
    seamless: bool = _option(
        True, kind="bool", label="colour matching", cli="edit", app=True, title="Match colours at the border",
        help="match the fill's colour to the photo at the mask's border, keeping the fill's own detail "
             "(gradient-domain blending)")
    precision: str = _option(
        "auto", kind="choice", label="precision", choices=PRECISIONS, cli="model", app=True,
        title="Precision",
        help="number format of the matrix products: auto measures once per machine and model whether "
             "bf16 is faster (CUDA: bf16 where the GPU computes it natively, else fp16 or fp32); fp32, bf16 "
             "or fp16 (CUDA only) to choose")
    # Coarse to fine (models with sampling.detail_spread, `auto` work scale): the downscaled fill
    # guides fills at finer scales, down to native pixels where the time allows (detail_plans).
    detail: bool = _option(
        True, kind="bool", label="fine detail", older=False, cli="edit", app=True, title="Fine detail",
        help="coarse to fine: after the fill at a coarse scale, fill again at finer scales guided by it, "
             "so the fill gets the photo's grain instead of a scaled-up blur (models that support it, "
             "work scale auto)")
    detail_spread: float | None = _option(
        None, kind="float", label="detail spread", low=0.0, low_note="(each pixel's median)", high=1.0,
        high_note="(the model's distribution)", from_model=True, older=None, cli="edit", app=True,
        title="Detail spread", step=0.05,
        help="0..1: the spread of the finer scales' pixels: higher gives more grain, lower a smoother fill")

    # ------------------------------------------------------------------------------ checking
    def validate(self, names: Mapping[str, str] | None = None) -> EditOptions:
        """Self, when every field has its type and is in its range; else a UserError naming the
        field as `names` does (the CLI passes its flags), else by its label."""
        for name, option in OPTIONS.items():
            value = getattr(self, name)
            if value is None and (option.from_model or name in ("class_id", "margin")):
                continue
            _check(option, value, (names or {}).get(name, option.label))
        return self

    def resolved(self, config, check: bool = True) -> EditOptions:
        """Validated, with every default filled from the model's `config` (its sampling defaults,
        half a window of margin) and checked against it: the options an edit runs with. check=False
        only fills (the engine's record of a coarse-to-fine stage, whose seed it derived itself)."""
        from fractal_studio.editing.planning import context_margin

        if check:
            self.validate()
        defaults = config.sampling
        filled = {name: getattr(defaults, name) for name, option in OPTIONS.items()
                  if option.from_model and getattr(self, name) is None}
        options = replace(self, **filled)
        if options.class_id is not None and not 0 <= int(options.class_id) < config.class_num:
            raise UserError(f"class {options.class_id} is out of range: this model has classes "
                            f"0..{config.class_num - 1}")
        levels = len(config.generators)
        if len(options.iterations) != levels:
            raise UserError(f"give {levels} iteration counts (one per generator level), "
                            f"got {len(options.iterations)}")
        margin = context_margin(options, config.resolution)
        return replace(
            options, class_id=None if options.class_id is None else int(options.class_id),
            cfg=float(options.cfg), temperature=float(options.temperature), spread=float(options.spread),
            filter_threshold=float(options.filter_threshold),
            iterations=tuple(int(i) for i in options.iterations), seed=int(options.seed),
            candidates=int(options.candidates), margin=margin, feather=int(options.feather),
            detail_spread=None if options.detail_spread is None else float(options.detail_spread))

    # ------------------------------------------------------------------------------ the record
    def to_record(self) -> dict[str, str]:
        """The options as the PNG record's text fields (a None other than the class is left out)."""
        record = {}
        for name, option in OPTIONS.items():
            value = getattr(self, name)
            if value is None and option.kind != "class":
                continue
            record[option.record or name] = _text(option, value)
        return record

    @classmethod
    def record_keys(cls, required: bool = True) -> tuple[str, ...]:
        """The record's keys of the options (those every record has, with `required`)."""
        return tuple(option.record or name for name, option in OPTIONS.items()
                     if not required or option.older == REQUIRED)

    @classmethod
    def from_record(cls, record: Mapping[str, str], where: str = "the record") -> EditOptions:
        """The options a record gives, validated: a one-line UserError for a missing, malformed or
        out-of-range field (a record is a file's text: anyone can write it)."""
        values = {}
        for name, option in OPTIONS.items():
            key = option.record or name
            if key not in record:
                if option.older == REQUIRED:
                    raise UserError(f"{where} has no {key!r} field")
                values[name] = option.older
                continue
            text = record[key]
            if not isinstance(text, str) or len(text) > RECORD_VALUE_CHARS:
                raise UserError(f"{where} has a {key!r} field that is not one fractal-studio writes")
            try:
                values[name] = _parse(option, text.strip())
            except ValueError as error:
                shown = printable(text)[:40]
                raise UserError(f"{where} has a bad {key!r} field ({shown!r}): {error}") from None
        names = {name: f"{option.record or name} in {where}" for name, option in OPTIONS.items()}
        return cls(**values).validate(names)

    def sampling_values(self, names) -> dict:
        """The fields among `names` (a request's field names: the sampler's SampleRequest)."""
        return {name: getattr(self, name) for name in names if name in OPTIONS}


OPTIONS: dict[str, Option] = {f.name: f.metadata["option"] for f in fields(EditOptions)}


def _check(option: Option, value, name: str) -> None:
    kind = option.kind
    if kind in ("int", "class"):
        if isinstance(value, bool) or not isinstance(value, int) and not _is_numpy_int(value):
            raise UserError(f"{name} must be a whole number ({option.bounds()}), got {value!r}")
        if kind == "int" and not option.contains(int(value)):
            raise UserError(f"{name} must be {option.bounds()}, got {value}")
        if kind == "class" and int(value) < 0:
            raise UserError(f"class {value} is out of range: classes start at 0")
    elif kind == "float":
        if isinstance(value, bool) or not isinstance(value, int | float) and not _is_numpy_number(value):
            raise UserError(f"{name} must be a number ({option.bounds()}), got {value!r}")
        if not math.isfinite(float(value)) or not option.contains(float(value)):
            raise UserError(f"{name} must be {option.bounds()}, got {value}")
    elif kind == "bool":
        if not isinstance(value, bool):
            raise UserError(f"{name} must be on or off (True or False), got {value!r}")
    elif kind == "choice":
        if value not in option.choices:
            raise UserError(f"{name} must be one of {', '.join(option.choices)}, got {value!r}")
    elif kind == "iterations":
        if not isinstance(value, tuple | list) or not value or \
                any(isinstance(i, bool) or not isinstance(i, int) and not _is_numpy_int(i) for i in value):
            raise UserError(f"{name} must be whole numbers, one per generator level (e.g. 64,16), "
                            f"got {value!r}")
        if min(int(i) for i in value) < 1:
            raise UserError(f"{name} must be at least 1 at every level, got {','.join(map(str, value))}")
    elif kind == "work_scale":
        from fractal_studio.editing.planning import parse_work_scale

        parse_work_scale(value)


def _is_numpy_int(value) -> bool:
    import numpy as np

    return isinstance(value, np.integer)


def _is_numpy_number(value) -> bool:
    import numpy as np

    return isinstance(value, np.integer | np.floating)


def _text(option: Option, value) -> str:
    kind = option.kind
    if kind == "class":
        return "none" if value is None else str(int(value))
    if kind == "bool":
        return "on" if value else "off"
    if kind == "float":
        return f"{value:g}"
    if kind == "int":
        return str(int(value))
    if kind == "iterations":
        return ",".join(str(int(i)) for i in value)
    return str(value)


_WHOLE = re.compile(r"-?[0-9]{1,20}")  # ASCII digits: "²" passes str.isdigit() but int() refuses it


def _whole(text: str) -> int:
    if not _WHOLE.fullmatch(text):
        raise ValueError("expected a whole number")
    return int(text)


def _parse(option: Option, text: str):
    """A record's text as the field's value (ValueError with what was expected)."""
    kind = option.kind
    if kind == "class":
        return None if text == "none" else _whole(text)
    if kind == "int":
        return _whole(text)
    if kind == "float":
        try:
            return float(text)
        except ValueError:
            raise ValueError("expected a number") from None
    if kind == "bool":
        if text not in ("on", "off"):
            raise ValueError("expected on or off")
        return text == "on"
    if kind == "iterations":
        if not text:
            raise ValueError("expected steps per level such as 64,16")
        return tuple(_whole(part) for part in text.split(","))
    if kind == "work_scale" and text not in ("auto", "native"):
        try:
            return float(text)  # a downscale factor, as the option was given
        except ValueError:
            pass
    return text  # a choice, a work scale's word: validate() checks them
