"""Model configuration: a list of levels plus the conditioning options, and named presets.

A fractal model is a stack of generator levels. Level i sees an image of side `levels[i].size` as
a grid of patches of side `levels[i + 1].size` and hands each patch to level i + 1. The last entry
is the per-pixel head (size 1), which samples R, G, B of one pixel.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, replace

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
LEVEL_KINDS = ("ar", "mar", "head")


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

    def seq_len(self, level: int) -> int:
        return (self.levels[level].size // self.patch_size(level)) ** 2

    def class_name(self, class_id: int) -> str:
        if class_id < len(self.class_names):
            return self.class_names[class_id]
        return f"class {class_id}"

    # ----------------------------------------------------------------- checks
    def validate(self) -> None:
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

    # ----------------------------------------------------------------- (de)serialisation
    def to_json(self) -> str:
        data = asdict(self)
        data.pop("class_names")  # stored separately: it can be long
        return json.dumps(data, sort_keys=True)

    @classmethod
    def from_json(cls, text: str, class_names: tuple[str, ...] = ()) -> ModelConfig:
        data = json.loads(text)
        data["levels"] = tuple(LevelConfig(**level) for level in data["levels"])
        sampling = data.get("sampling") or {}
        sampling["iterations"] = tuple(sampling.get("iterations", ()))
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
}


def preset(name: str, **changes) -> ModelConfig:
    """A named preset, optionally with fields replaced (e.g. class_num=10)."""
    if name not in PRESETS:
        raise KeyError(f"unknown preset {name!r}; known: {', '.join(sorted(PRESETS))}")
    return replace(PRESETS[name], **changes)
