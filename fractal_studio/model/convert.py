"""Conversion of the paper authors' checkpoints (.pth) into our .safetensors format.

Their files hold {"model": state dict, "optimizer": ..., "args": argparse.Namespace, ...}. We load
with `weights_only=True` (only argparse.Namespace allow-listed) and `mmap=True`, so tensors stay in
the file until each is written out: memory stays near one copy of the weights.
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

import torch

from fractal_studio.errors import ModelFileError, UnknownModel, UserError
from fractal_studio.model.config import PRESETS, ModelConfig, from_authors_lists, preset
from fractal_studio.model.weights import check_state_dict, model_metadata, write_safetensors
from fractal_studio.untrusted import MAX_CLASS_NAMES_BYTES, check_torch_file, load_json_file, read_bytes

# Package data (fractal_studio/assets), so a wheel has it too
IMAGENET_CLASSES_FILE = Path(__file__).resolve().parents[1] / "assets" / "imagenet_classes.txt"

_HEAD_RENAMES = {"r_codebook.weight": "codebooks.0.weight", "g_codebook.weight": "codebooks.1.weight",
                 "b_codebook.weight": "codebooks.2.weight", "r_mlm.bias": "logit_bias.0",
                 "g_mlm.bias": "logit_bias.1", "b_mlm.bias": "logit_bias.2"}


def our_key(key: str, generator_levels: int) -> str:
    """Maps a key of the authors' nested layout (next_fractal.next_fractal.generator.x) to ours."""
    depth = 0
    while key.startswith("next_fractal."):
        key = key[len("next_fractal."):]
        depth += 1
    if key.startswith("generator."):
        rest = key[len("generator."):]
        if rest.startswith("guiding_pixel_loss."):
            rest = "guide_head." + _head_key(rest[len("guiding_pixel_loss."):])
        return f"levels.{depth}.{rest}"
    if depth == generator_levels:
        return "head." + _head_key(key)
    return key  # top-level tensors: class_emb.weight, fake_latent


def _head_key(key: str) -> str:
    return _HEAD_RENAMES.get(key, key)


def authors_key(key: str, generator_levels: int) -> str:
    """Inverse of `our_key` (used to time the authors' sampler on our weights)."""
    inverse = {v: k for k, v in _HEAD_RENAMES.items()}
    if key.startswith("levels."):
        _, index, rest = key.split(".", 2)
        if rest.startswith("guide_head."):
            rest = "guiding_pixel_loss." + inverse.get(rest[len("guide_head."):], rest[len("guide_head."):])
        return "next_fractal." * int(index) + "generator." + rest
    if key.startswith("head."):
        rest = key[len("head."):]
        return "next_fractal." * generator_levels + inverse.get(rest, rest)
    return key


def load_authors_checkpoint(src: str | Path) -> tuple[dict[str, torch.Tensor], argparse.Namespace | None]:
    src = Path(src)
    if not src.is_file():
        raise UserError(f"checkpoint {src} does not exist")
    check_torch_file(src, "checkpoint")
    try:
        with torch.serialization.safe_globals([argparse.Namespace]):
            checkpoint = torch.load(src, map_location="cpu", weights_only=True, mmap=True)
    except Exception as error:  # torch raises many types for corrupt or foreign files
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ModelFileError(f"{src} is not a readable PyTorch checkpoint ({reason[:200]})") from error
    if isinstance(checkpoint, dict) and isinstance(checkpoint.get("model"), dict):
        return checkpoint["model"], checkpoint.get("args")
    if isinstance(checkpoint, dict) and all(isinstance(v, torch.Tensor) for v in checkpoint.values()):
        return checkpoint, None  # a bare state dict
    raise ModelFileError(f"{src} holds no model weights (expected a dict with a 'model' state dict)")


def config_from_option(option: str | None, args: argparse.Namespace | None, src: Path) -> ModelConfig:
    """--config NAME | config.json, or the preset named in the checkpoint's own arguments."""
    if option:  # an explicit configuration wins over the checkpoint's own arguments
        if option in PRESETS:
            return preset(option)
        return _config_from_json_file(Path(option))
    else:
        name = getattr(args, "model", None)
        if name not in PRESETS:
            raise UnknownModel(f"{src} was trained with model {name!r}, which is not a published preset; "
                            f"pass --config with a preset name ({', '.join(PRESETS)}) or a config.json")
        return _apply_checkpoint_args(preset(name), args)


def _config_from_json_file(path: Path) -> ModelConfig:
    if not path.exists():
        raise UserError(f"--config {path}: no preset or file of that name; "
                        f"presets: {', '.join(PRESETS)}")
    data = load_json_file(path, "--config")
    if not isinstance(data, dict):
        raise ValueError("it is not a JSON object (a table of settings)")
    if "img_size_list" in data:  # the authors' constructor arguments
        keys = ("img_size_list", "embed_dim_list", "num_blocks_list", "num_heads_list", "generator_type_list")
        extra = {k: data[k] for k in ("num_conds", "guiding_pixel", "class_num") if k in data}
        return from_authors_lists(path.stem if path.stem != "config" else path.parent.name,
                                  *(data[k] for k in keys), **extra)
    return ModelConfig.from_json(json.dumps(data))


def _apply_checkpoint_args(config: ModelConfig, args: argparse.Namespace) -> ModelConfig:
    from dataclasses import replace

    changes = {}
    for field_name in ("num_conds", "guiding_pixel", "class_num"):
        value = getattr(args, field_name, None)
        if value is not None and value != getattr(config, field_name):
            changes[field_name] = value
    if "class_num" in changes and config.class_names:
        changes["class_names"] = ()
    return replace(config, **changes) if changes else config


def read_class_names(path: str | Path) -> tuple[str, ...]:
    try:
        lines = read_bytes(path, "class names file", MAX_CLASS_NAMES_BYTES).decode("utf-8").splitlines()
    except UnicodeDecodeError:
        raise UserError(f"{path} is not a text file of class names (one per line, UTF-8)") from None
    return tuple(re.sub(r"^\d+\s*[:\t]\s*", "", line).strip() for line in lines if line.strip())


def convert_checkpoint(src: str | Path, dst: str | Path, config_option: str | None = None,
                       class_names_file: str | Path | None = None, log=lambda message: None) -> ModelConfig:
    src, dst = Path(src), Path(dst)
    state, args = load_authors_checkpoint(src)
    try:
        config = config_from_option(config_option, args, src)
        names = _class_names_for(config, class_names_file)
        if names:
            config = config.with_classes(names)
    except (ValueError, TypeError, KeyError, AttributeError) as error:
        where = f"--config {config_option}" if config_option else f"the arguments stored in {src}"
        raise ModelFileError(f"{where} do not describe a valid model: {error}") from None
    generator_levels = len(config.generators)
    renamed = {our_key(k, generator_levels): v for k, v in state.items()}
    check_state_dict({k: tuple(v.shape) for k, v in renamed.items()}, config, str(src))
    broken = sorted(k for k, v in renamed.items()
                    if not v.is_floating_point() or not bool(torch.isfinite(v).all()))
    if broken:
        raise ModelFileError(f"{src} is damaged: {len(broken)} tensors are not finite floating-point numbers "
                             f"(e.g. {broken[0]}); it cannot be converted")
    expected_order = sorted(renamed)
    metadata = model_metadata(config, converted_from=src.name)
    log(f"writing {dst} ({sum(v.numel() for v in renamed.values()):,} parameters)")
    try:
        write_safetensors(dst, ((k, renamed[k]) for k in expected_order), metadata)
    except OSError as error:
        raise UserError(f"could not write {dst}: {error.strerror or error}") from error
    return config


def _class_names_for(config: ModelConfig, class_names_file) -> tuple[str, ...]:
    if class_names_file:
        names = read_class_names(class_names_file)
    elif config.class_num == 1000 and IMAGENET_CLASSES_FILE.is_file():
        names = read_class_names(IMAGENET_CLASSES_FILE)
    else:
        return ()
    if len(names) != config.class_num:
        raise UserError(f"{class_names_file or IMAGENET_CLASSES_FILE} lists {len(names)} class names "
                        f"but the model has {config.class_num} classes")
    return names
