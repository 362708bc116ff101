"""Model configuration: a list of levels plus the conditioning options, and named presets.

A fractal model is a stack of generator levels. Level i sees an image of side `levels[i].size` as
a grid of patches of side `levels[i + 1].size` and hands each patch to level i + 1. The last entry
is the per-pixel head (size 1), which samples R, G, B of one pixel.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field, replace

# Bounds on what a configuration may say: far beyond the published models (FractalMAR-H: width
# 1280, depth 40, 256 pixels, 1000 classes), and small enough that building one cannot exhaust memory.
MAX_LEVELS = 8
MAX_SIZE = 4096
MAX_WIDTH = 8192
MAX_DEPTH = 256
MAX_CLASSES = 100_000
MAX_ITERATIONS = 100_000
MAX_CFG = 1000.0
MIN_TEMPERATURE = 1e-3
MAX_HOLE_DEPTH = float(MAX_SIZE)
MAX_DETAIL_LOCK = 64.0  # pixels of a scale
MAX_LAYOUT_SAMPLES = 16


def _finite_number(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _check_int(what: str, value, low: int, high: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool):
        raise ValueError(f"{what} must be a whole number, got {value!r}")
    if not low <= value <= high:
        raise ValueError(f"{what} must be between {low} and {high}, got {value}")


IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
LEVEL_KINDS = ("ar", "mar", "head")
# The masks a model can have learnt from: the paper's (a share of random tokens), edit-shaped holes,
# half of each, or holes holding a sparse guide (training/edit_masks.py draws them).
TRAINED_MASKS = ("paper", "edit", "mix", "guided")


@dataclass(frozen=True)
class LevelConfig:
    kind: str  # "ar" (raster-order causal), "mar" (masked, bidirectional) or "head" (per pixel)
    size: int  # side in pixels of the image this level works on
    width: int  # transformer width
    depth: int  # number of transformer blocks
    heads: int  # attention heads


@dataclass(frozen=True)
class SamplingDefaults:
    """Defaults shown in the UI and used by the CLI. Temperature divides the logits."""

    iterations: tuple[int, ...]
    cfg: float = 1.0
    cfg_schedule: str = "linear"
    temperature: float = 1.0
    filter_threshold: float = 1e-4
    spread: float = 1.0  # central share of each pixel's distribution sampled from (1 = all of it)
    # The deepest hole the model fills well, in model pixels from the nearest known pixel: the
    # editor's `auto` work scale downscales a photo until no hole is deeper. None = no limit.
    hole_depth: float | None = None
    # Coarse to fine (editing/engine.py): after a downscaled fill, the editor fills again at finer
    # scales, each guided by the last, drawing each pixel from this central share of its
    # distribution with these iterations. None = the model does not fill coarse to fine.
    detail_spread: float | None = None
    detail_iterations: tuple[int, ...] | None = None
    # Coarse to fine: each finer scale keeps the last scale's colours at its own pixel size and
    # larger (a Gaussian of this sigma, in the scale's pixels, of the difference): the model adds
    # that scale's detail, not a drift of its shade. None = no lock.
    detail_lock: float | None = None
    # Coarse to fine: each candidate's layout (the coarse fill) is the mean of this many samples
    # of it, drawn together: nearer the colours and shapes the known pixels imply than one sample.
    layout_samples: int = 1
    # Coarse to fine: this share of every guide a finer scale gets is a classical continuation of
    # the known pixels at that scale (editing/continuation.py), the rest the model's fill: they err
    # in different ways, and their mean is the nearer layout. None = the model's fill alone.
    guide_classical: float | None = None


@dataclass(frozen=True)
class ModelConfig:
    name: str
    levels: tuple[LevelConfig, ...]
    num_conds: int = 1  # 1 for AR models, 5 (middle, top, right, bottom, left) for MAR models
    guiding_pixel: bool = False
    class_num: int = 1000
    class_names: tuple[str, ...] = ()
    pixel_mean: tuple[float, float, float] = IMAGENET_MEAN
    pixel_std: tuple[float, float, float] = IMAGENET_STD
    dropout: float = 0.1  # attention and projection dropout during training
    label_drop_prob: float = 0.1  # classifier-free guidance: share of training labels replaced
    r_weight: float = 5.0  # training weight of the red channel in the pixel head (as the paper)
    # The masks the model learnt from (training/edit_masks.MASK_STYLES): what the surprise map may ask
    # of it. The published models learnt the paper's; so does a model whose file does not say.
    trained_masks: str = "paper"
    sampling: SamplingDefaults = field(default_factory=lambda: SamplingDefaults(iterations=(64, 16)))

    def __post_init__(self):
        self.validate()

    # ----------------------------------------------------------------- derived
    @property
    def resolution(self) -> int:
        return self.levels[0].size

    @property
    def generators(self) -> tuple[LevelConfig, ...]:
        return self.levels[:-1]

    @property
    def head(self) -> LevelConfig:
        return self.levels[-1]

    @property
    def conditional(self) -> bool:
        """Whether the model was trained with meaningful classes (a single class means unconditional)."""
        return self.class_num > 1

    def patch_size(self, level: int) -> int:
        return self.levels[level + 1].size

    @property
    def patch_sizes(self) -> tuple[int, ...]:
        """The patch side of every generator level, top first (e.g. 16, 4, 1 for 64 -> 16 -> 4 -> 1)."""
        return tuple(self.patch_size(level) for level in range(len(self.generators)))

    def seq_len(self, level: int) -> int:
        return (self.levels[level].size // self.patch_size(level)) ** 2

    def class_name(self, class_id: int) -> str:
        if class_id < len(self.class_names):
            return self.class_names[class_id]
        return f"class {class_id}"

    # ----------------------------------------------------------------- checks
    def validate(self) -> None:
        self._check_types_and_bounds()
        if len(self.levels) < 2:
            raise ValueError("a model needs at least one generator level and the pixel head")
        if self.levels[-1].kind != "head" or self.levels[-1].size != 1:
            raise ValueError("the last level must be the per-pixel head (kind 'head', size 1)")
        for index, level in enumerate(self.levels):
            if level.kind not in LEVEL_KINDS or (level.kind == "head") != (index == len(self.levels) - 1):
                raise ValueError(f"level {index}: kind {level.kind!r} is not allowed there")
            if level.width % level.heads:
                raise ValueError(f"level {index}: width {level.width} is not divisible "
                                 f"by {level.heads} heads")
        for index, level in enumerate(self.generators):
            patch = self.patch_size(index)
            if level.size % patch:
                raise ValueError(f"level {index}: size {level.size} is not a multiple of patch {patch}")
        if self.num_conds not in (1, 5):
            raise ValueError("num_conds must be 1 or 5")
        if self.class_num < 1:
            raise ValueError("class_num must be at least 1")
        if self.class_names and len(self.class_names) != self.class_num:
            raise ValueError(f"{len(self.class_names)} class names given for {self.class_num} classes")
        if len(self.sampling.iterations) != len(self.generators):
            raise ValueError("sampling.iterations needs one entry per generator level")
        if self.trained_masks not in TRAINED_MASKS:
            raise ValueError(f"trained_masks must be one of {', '.join(TRAINED_MASKS)}, "
                             f"not {self.trained_masks!r}")

    def _check_types_and_bounds(self) -> None:
        """Every number is of the right type and within what a real model can have, checked before
        anything is built from it (a depth of a million would build modules until memory runs out)."""
        if not isinstance(self.name, str):
            raise ValueError("name must be a string")
        if not isinstance(self.levels, tuple | list) or not 2 <= len(self.levels) <= MAX_LEVELS:
            raise ValueError(f"levels must be a list of 2 to {MAX_LEVELS} levels")
        for index, level in enumerate(self.levels):
            if not isinstance(level, LevelConfig):
                raise ValueError(f"level {index} is not a level description")
            for field_name, low, high in (("size", 1, MAX_SIZE), ("width", 1, MAX_WIDTH),
                                          ("depth", 0, MAX_DEPTH), ("heads", 1, MAX_WIDTH)):
                _check_int(f"level {index}: {field_name}", getattr(level, field_name), low, high)
            if level.kind != "head" and level.depth < 1:
                raise ValueError(f"level {index}: depth must be at least 1, got {level.depth}")
        _check_int("class_num", self.class_num, 1, MAX_CLASSES)
        _check_int("num_conds", self.num_conds, 1, 5)
        if not isinstance(self.guiding_pixel, bool):
            raise ValueError("guiding_pixel must be true or false")
        if not all(isinstance(name, str) for name in self.class_names):
            raise ValueError("class names must be strings")
        for field_name in ("pixel_mean", "pixel_std"):
            values = getattr(self, field_name)
            if (not isinstance(values, tuple | list) or len(values) != 3
                    or not all(_finite_number(v) for v in values)):
                raise ValueError(f"{field_name} must be three finite numbers")
        if not all(v > 0 for v in self.pixel_std):
            raise ValueError(f"pixel_std must be positive, got {list(self.pixel_std)}")
        for field_name in ("dropout", "label_drop_prob"):
            value = getattr(self, field_name)
            if not _finite_number(value) or not 0 <= value < 1:
                raise ValueError(f"{field_name} must be in [0, 1), got {value!r}")
        if not _finite_number(self.r_weight) or self.r_weight <= 0:
            raise ValueError(f"r_weight must be a positive number, got {self.r_weight!r}")
        sampling = self.sampling
        if not isinstance(sampling, SamplingDefaults):
            raise ValueError("sampling must be a description of the sampling defaults")
        for value in sampling.iterations:
            _check_int("sampling.iterations", value, 1, MAX_ITERATIONS)
        if not _finite_number(sampling.cfg) or not 1 <= sampling.cfg <= MAX_CFG:
            raise ValueError(f"sampling.cfg must be in [1, {MAX_CFG:g}], got {sampling.cfg!r}")
        if not _finite_number(sampling.temperature) or not MIN_TEMPERATURE <= sampling.temperature <= 100:
            raise ValueError(f"sampling.temperature must be in [{MIN_TEMPERATURE:g}, 100], "
                             f"got {sampling.temperature!r}")
        if not _finite_number(sampling.spread) or not 0 <= sampling.spread <= 1:
            raise ValueError(f"sampling.spread must be in [0, 1], got {sampling.spread!r}")
        if sampling.hole_depth is not None and (not _finite_number(sampling.hole_depth)
                                                or not 0 < sampling.hole_depth <= MAX_HOLE_DEPTH):
            raise ValueError(f"sampling.hole_depth must be empty or in (0, {MAX_HOLE_DEPTH}], "
                             f"got {sampling.hole_depth!r}")
        if sampling.detail_spread is not None and (not _finite_number(sampling.detail_spread)
                                                   or not 0 <= sampling.detail_spread <= 1):
            raise ValueError(f"sampling.detail_spread must be empty or in [0, 1], "
                             f"got {sampling.detail_spread!r}")
        if sampling.detail_iterations is not None:
            if len(sampling.detail_iterations) != len(sampling.iterations):
                raise ValueError("sampling.detail_iterations needs one entry per generator level")
            for value in sampling.detail_iterations:
                _check_int("sampling.detail_iterations", value, 1, MAX_ITERATIONS)
        if sampling.detail_lock is not None and (not _finite_number(sampling.detail_lock)
                                                 or not 0 < sampling.detail_lock <= MAX_DETAIL_LOCK):
            raise ValueError(f"sampling.detail_lock must be empty or in (0, {MAX_DETAIL_LOCK:g}], "
                             f"got {sampling.detail_lock!r}")
        _check_int("sampling.layout_samples", sampling.layout_samples, 1, MAX_LAYOUT_SAMPLES)
        share = sampling.guide_classical
        if share is not None and (not _finite_number(share) or not 0 < share <= 1):
            raise ValueError(f"sampling.guide_classical must be empty or in (0, 1], got {share!r}")
        if not _finite_number(sampling.filter_threshold) or not 0 <= sampling.filter_threshold < 1:
            raise ValueError(f"sampling.filter_threshold must be in [0, 1), "
                             f"got {sampling.filter_threshold!r}")

    # ----------------------------------------------------------------- (de)serialisation
    def to_json(self) -> str:
        data = asdict(self)
        data.pop("class_names")  # stored separately: it can be long
        return json.dumps(data, sort_keys=True)

    @classmethod
    def from_json(cls, text: str, class_names: tuple[str, ...] = ()) -> ModelConfig:
        from fractal_studio.untrusted import load_json

        data = load_json(text, "the configuration")
        if not isinstance(data, dict) or not isinstance(data.get("levels"), list):
            raise ValueError("the configuration must be a JSON object with a list of levels")
        if not all(isinstance(level, dict) for level in data["levels"]):
            raise ValueError("every level must be a JSON object")
        if not isinstance(data.get("sampling") or {}, dict):
            raise ValueError("sampling must be a JSON object")
        data["levels"] = tuple(LevelConfig(**level) for level in data["levels"])
        sampling = data.get("sampling") or {}
        sampling["iterations"] = tuple(sampling.get("iterations", ()))
        if isinstance(sampling.get("detail_iterations"), list):
            sampling["detail_iterations"] = tuple(sampling["detail_iterations"])
        data["sampling"] = SamplingDefaults(**sampling)
        for key in ("pixel_mean", "pixel_std"):
            if key in data:
                data[key] = tuple(data[key])
        return cls(**data, class_names=tuple(class_names))

    def with_classes(self, class_names: tuple[str, ...]) -> ModelConfig:
        return replace(self, class_names=tuple(class_names), class_num=len(class_names))


def from_authors_lists(name: str, img_size_list, embed_dim_list, num_blocks_list, num_heads_list,
                       generator_type_list, num_conds=1, guiding_pixel=False, class_num=1000,
                       sampling: SamplingDefaults | None = None) -> ModelConfig:
    """Builds a configuration from the paper code's constructor lists (its last entries are the head)."""
    count = len(img_size_list)
    levels = tuple(
        LevelConfig(
            kind="head" if i == count - 1 else generator_type_list[i],
            size=img_size_list[i], width=embed_dim_list[i], depth=num_blocks_list[i], heads=num_heads_list[i],
        )
        for i in range(count)
    )
    if sampling is None:
        sampling = SamplingDefaults(iterations=tuple([64] + [16] * (count - 2)))
    return ModelConfig(name=name, levels=levels, num_conds=num_conds, guiding_pixel=guiding_pixel,
                       class_num=class_num, sampling=sampling)


def _published(name, sizes, widths, depths, heads, kinds, num_conds, guiding, cfg, temperature):
    # The paper samples with its "temperature" multiplying the logits; ours divides them.
    iterations = (64, 16) if len(sizes) == 3 else (64, 16, 16)
    sampling = SamplingDefaults(iterations=iterations, cfg=cfg, cfg_schedule="linear",
                                temperature=round(1.0 / temperature, 6), filter_threshold=1e-4)
    return from_authors_lists(name, sizes, widths, depths, heads, kinds, num_conds=num_conds,
                              guiding_pixel=guiding, class_num=1000, sampling=sampling)


def _small(name, sizes, widths, depths, heads, kinds, num_conds=5, guiding=False, class_num=1):
    sampling = SamplingDefaults(iterations=tuple([16] + [4] * (len(sizes) - 2)), cfg=1.0)
    return from_authors_lists(name, sizes, widths, depths, heads, kinds, num_conds=num_conds,
                              guiding_pixel=guiding, class_num=class_num, sampling=sampling)


PRESETS: dict[str, ModelConfig] = {
    # The five published ImageNet models (sampling settings from the paper's evaluation commands).
    "fractalar_in64": _published("fractalar_in64", (64, 4, 1), (1024, 512, 128), (32, 8, 3), (16, 8, 4),
                                 ("ar", "ar", "ar"), 1, False, cfg=11.0, temperature=1.03),
    "fractalmar_in64": _published("fractalmar_in64", (64, 4, 1), (1024, 512, 128), (32, 8, 3), (16, 8, 4),
                                  ("mar", "mar", "ar"), 5, False, cfg=6.5, temperature=1.02),
    "fractalmar_base_in256": _published("fractalmar_base_in256", (256, 16, 4, 1), (768, 384, 192, 64),
                                        (24, 6, 3, 1), (12, 6, 3, 4), ("mar", "mar", "mar", "ar"), 5, True,
                                        cfg=29.0, temperature=1.1),
    "fractalmar_large_in256": _published("fractalmar_large_in256", (256, 16, 4, 1), (1024, 512, 256, 64),
                                         (32, 8, 4, 1), (16, 8, 4, 4), ("mar", "mar", "mar", "ar"), 5, True,
                                         cfg=21.0, temperature=1.1),
    "fractalmar_huge_in256": _published("fractalmar_huge_in256", (256, 16, 4, 1), (1280, 640, 320, 64),
                                        (40, 10, 5, 1), (16, 8, 4, 4), ("mar", "mar", "mar", "ar"), 5, True,
                                        cfg=19.0, temperature=1.1),
    # Small models that train on one machine.
    "tiny_mar_in16": _small("tiny_mar_in16", (16, 4, 1), (64, 32, 16), (2, 1, 1), (4, 2, 2), ("mar", "mar")),
    "tiny_ar_in16": _small("tiny_ar_in16", (16, 4, 1), (64, 32, 16), (2, 1, 1), (4, 2, 2), ("ar", "ar"),
                           num_conds=1),
    "tiny_mar_guiding_in16": _small("tiny_mar_guiding_in16", (16, 4, 2, 1), (64, 32, 16, 16), (2, 1, 1, 1),
                                    (4, 2, 2, 2), ("mar", "mar", "mar"), guiding=True),
    "small_mar_in32": _small("small_mar_in32", (32, 4, 1), (192, 96, 48), (6, 2, 2), (6, 4, 4),
                             ("mar", "mar")),
    "small_ar_in64": _small("small_ar_in64", (64, 4, 1), (192, 96, 48), (4, 2, 2), (4, 4, 4), ("ar", "ar"),
                            num_conds=1),
    "medium_mar_in64": _small("medium_mar_in64", (64, 4, 1), (512, 256, 64), (8, 4, 2), (8, 4, 4),
                              ("mar", "mar")),
    "small_mar_in64": _small("small_mar_in64", (64, 8, 2, 1), (192, 128, 64, 32), (6, 3, 2, 1),
                             (6, 4, 4, 2), ("mar", "mar", "mar")),
    # Sized for about half an hour of single-thread CPU training (see models/*.md): narrow lower
    # levels, where most of the compute goes, and no dropout (a short run does not overfit).
    "fmnist_mar_in32": replace(
        _small("fmnist_mar_in32", (32, 4, 1), (160, 64, 32), (4, 2, 1), (4, 4, 2), ("mar", "mar")),
        dropout=0.0, sampling=SamplingDefaults(iterations=(16, 4), cfg=3.0)),
    "photo_mar_in64": replace(
        _small("photo_mar_in64", (64, 16, 4, 1), (160, 96, 48, 32), (4, 2, 1, 1), (4, 4, 4, 2),
               ("mar", "mar", "mar")),
        dropout=0.0),
    # The same levels with more capacity below the top (the lower levels draw the blocks a fill
    # shows): tried against photo_mar_in64 at equal training time (models/photo_64.md).
    "photo_mar_in64_low": replace(
        _small("photo_mar_in64_low", (64, 16, 4, 1), (160, 128, 64, 32), (4, 3, 2, 1), (4, 4, 4, 2),
               ("mar", "mar", "mar")),
        dropout=0.0),
}


def preset(name: str, **changes) -> ModelConfig:
    """A named preset, optionally with fields replaced (e.g. class_num=10)."""
    if name not in PRESETS:
        raise KeyError(f"unknown preset {name!r}; known: {', '.join(sorted(PRESETS))}")
    return replace(PRESETS[name], **changes)
