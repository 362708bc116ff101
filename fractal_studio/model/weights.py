"""Our weight format: one .safetensors file whose metadata holds the configuration and class names.

Writing streams one tensor at a time into a temporary file that is renamed into place, so a
multi-gigabyte model never needs a second in-memory copy and a failed write leaves no half file.
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
import threading
from collections.abc import Callable, Iterable
from typing import BinaryIO

import torch
import torch.nn as nn

from fractal_studio.errors import ModelFileError, UserError
from fractal_studio.files import atomic_write
from fractal_studio.model.config import ModelConfig
from fractal_studio.model.fractal import FractalModel
from fractal_studio.untrusted import (
    MAX_SAFETENSORS_HEADER_BYTES,
    check_file,
    check_path,
    load_json,
    printable,
)

FORMAT_TAG = "fractal-studio"
FORMAT_VERSION = "1"
_DTYPES = {torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16", torch.float64: "F64",
           torch.int64: "I64", torch.int32: "I32", torch.uint8: "U8", torch.bool: "BOOL"}


def expected_shapes(config: ModelConfig) -> dict[str, tuple[int, ...]]:
    """Every parameter name and shape a model of this configuration has (built on the meta device)."""
    model = model_without_weights(config)
    return {name: tuple(t.shape) for name, t in model.state_dict().items()}


# The initialisers modules call while they are built (ours and PyTorch's layers).
_INITIALISERS = ("normal_", "uniform_", "trunc_normal_", "xavier_uniform_", "kaiming_uniform_", "zeros_",
                 "ones_", "constant_")
_building = threading.Lock()


def model_without_weights(config: ModelConfig) -> FractalModel:
    """A model of `config` on the meta device: shapes only, for checking a file or assigning its
    tensors. Its initialisers are skipped: on meta tensors they do nothing useful, and the first one
    imports PyTorch's compiler (about 1.2 s of every start, measured on a 2-core Xeon). The lock
    keeps two loads apart; nothing else in the program builds a model while one loads."""
    def skip(tensor, *args, **kwargs):
        return tensor

    with _building:
        saved = {name: getattr(nn.init, name) for name in _INITIALISERS}
        try:
            for name in _INITIALISERS:
                setattr(nn.init, name, skip)
            with torch.device("meta"):
                return FractalModel(config)
        finally:
            for name, function in saved.items():
                setattr(nn.init, name, function)


def check_state_dict(shapes: dict[str, tuple[int, ...]], config: ModelConfig, source: str) -> None:
    """Raises ModelFileError naming every missing, unexpected or mis-shaped tensor (names from the
    file are printed without control characters, and shortened)."""
    expected = expected_shapes(config)
    problems = []
    missing = sorted(set(expected) - set(shapes))
    unexpected = sorted(set(shapes) - set(expected))
    if missing:
        problems.append(f"missing {len(missing)} tensors: {_names(missing)}")
    if unexpected:
        problems.append(f"unexpected {len(unexpected)} tensors: {_names(unexpected)}")
    wrong = [f"{k} is {list(shapes[k])}, expected {list(expected[k])}"
             for k in sorted(set(expected) & set(shapes)) if tuple(shapes[k]) != expected[k]]
    if wrong:
        problems.append(f"{len(wrong)} tensors with the wrong shape: {'; '.join(wrong[:5])}"
                        + (" …" if len(wrong) > 5 else ""))
    if problems:
        raise ModelFileError(f"{printable(source)} does not match configuration {printable(config.name)!r}: "
                             + "; ".join(problems) + "; it is damaged or was altered (convert or download "
                             "it again)")


def check_model_header(header: dict, config: ModelConfig, source: str) -> None:
    """Every tensor a model of `config` has, with its shape, and nothing else, stored as weights are
    (F32 or BF16): what load_model and `info` check before they trust the file."""
    check_state_dict({k: tuple(v["shape"]) for k, v in header.items()}, config, source)
    other = sorted({v["dtype"] for v in header.values()} - set(WEIGHT_DTYPES))
    if other:
        raise ModelFileError(f"{printable(source)} holds {', '.join(other)} tensors; this program reads "
                             f"weights stored as {' or '.join(WEIGHT_DTYPES)} (convert the model again)")


def _names(keys: list[str], limit: int = 6) -> str:
    shown = [_short_name(key) for key in keys[:limit]]
    return ", ".join(shown) + (f" and {len(keys) - limit} more" if len(keys) > limit else "")


def _short_name(name: str, limit: int = 80) -> str:
    name = printable(name)
    return name if len(name) <= limit else name[:limit - 1] + "…"


# ----------------------------------------------------------------------------------- writing
def write_safetensors(path: str | os.PathLike, tensors: Iterable[tuple[str, torch.Tensor]],
                      metadata: dict[str, str]) -> None:
    """Writes the safetensors layout (8-byte header size, JSON header, raw data) one tensor at a time."""
    atomic_write(path, safetensors_writer(tensors, metadata))


def safetensors_writer(tensors: Iterable[tuple[str, torch.Tensor]],
                       metadata: dict[str, str]) -> Callable[[BinaryIO], None]:
    """What writes a safetensors file to an open file (for atomic_write_all, with other files)."""
    items = list(tensors)
    header: dict[str, object] = {"__metadata__": metadata}
    offset = 0
    for name, tensor in items:
        size = tensor.numel() * tensor.element_size()
        header[name] = {"dtype": _DTYPES[tensor.dtype], "shape": list(tensor.shape),
                        "data_offsets": [offset, offset + size]}
        offset += size
    header_bytes = json.dumps(header, separators=(",", ":")).encode()
    header_bytes += b" " * (-len(header_bytes) % 8)  # keeps the data 8-byte aligned

    def write(out) -> None:
        out.write(struct.pack("<Q", len(header_bytes)))
        out.write(header_bytes)
        for _, tensor in items:
            out.write(_tensor_bytes(tensor))

    return write


def model_writer(model: FractalModel) -> Callable[[BinaryIO], None]:
    """What writes `model` as a self-describing file (weights and configuration)."""
    return safetensors_writer(model.state_dict().items(), model_metadata(model.config))


def _tensor_bytes(tensor: torch.Tensor) -> memoryview:
    tensor = tensor.detach().to("cpu").contiguous()
    if tensor.dtype == torch.bfloat16:
        tensor = tensor.view(torch.int16)
    return memoryview(tensor.numpy()).cast("B")


def model_metadata(config: ModelConfig, **extra: str) -> dict[str, str]:
    """The metadata that makes a .safetensors file a self-describing model (format, configuration,
    class names), then `extra` texts such as converted_from. The key order is part of the file's bytes."""
    return {"format": FORMAT_TAG, "format_version": FORMAT_VERSION, "config": config.to_json(),
            "class_names": json.dumps(list(config.class_names)), **extra}


def save_model(model: FractalModel, path: str | os.PathLike) -> None:
    """Saves weights and configuration (a self-describing file)."""
    try:
        atomic_write(path, model_writer(model))
    except OSError as error:
        raise ModelFileError(f"could not write {path}: {error.strerror or error}") from error


# ----------------------------------------------------------------------------------- reading
def read_header(path: str | os.PathLike) -> tuple[dict, dict[str, str]]:
    """(tensor entries, metadata) of a safetensors file, with clear errors for anything unreadable."""
    path = check_path(path, "model file")
    if not path.is_file():
        raise ModelFileError(f"model file {path} does not exist" if not path.exists()
                             else f"{path} is not a regular file (a folder, device, pipe or socket)")
    size = check_file(path, "model file", 1 << 62).st_size  # a regular file (a FIFO would block)
    try:
        with open(path, "rb") as f:
            raw = f.read(8)
            if len(raw) < 8:
                raise ModelFileError(f"{path} is not a model file: it is only {size} bytes long")
            (header_len,) = struct.unpack("<Q", raw)
            if header_len > min(size - 8, MAX_SAFETENSORS_HEADER_BYTES):
                raise ModelFileError(f"{path} is not a safetensors model file (or it is truncated)")
            text = f.read(header_len)
    except OSError as error:
        raise ModelFileError(f"could not read {path}: {error.strerror or error}") from error
    try:
        header = load_json(text, "its header")
    except UserError as error:
        raise ModelFileError(f"{path} is not a safetensors model file: {error}") from None
    if not isinstance(header, dict):
        raise ModelFileError(f"{path} is not a safetensors model file: its header is not a JSON object")
    metadata = header.pop("__metadata__", None) or {}
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        raise ModelFileError(f"{path} is damaged: its metadata is not a table of texts")
    for name, entry in header.items():
        problem = _entry_problem(entry)
        if problem:
            raise ModelFileError(f"{path} is damaged: tensor {name!r} {problem}")
    data_end = max((entry["data_offsets"][1] for entry in header.values()), default=0)
    if 8 + header_len + data_end > size:
        raise ModelFileError(f"{path} is truncated: {size} bytes, but its header describes "
                             f"{8 + header_len + data_end} bytes; download or convert it again")
    return header, metadata


_ITEM_BYTES = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U8": 1,
               "BOOL": 1}
WEIGHT_DTYPES = ("F32", "BF16")


def _entry_problem(entry) -> str | None:
    """What is wrong with one tensor entry of a safetensors header (None if nothing)."""
    if not isinstance(entry, dict):
        return "is not described by a JSON object"
    dtype, shape, offsets = entry.get("dtype"), entry.get("shape"), entry.get("data_offsets")
    if not isinstance(dtype, str) or dtype not in _ITEM_BYTES:
        return f"has an unknown data type {dtype!r}"
    if not isinstance(shape, list) or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0
                                              for d in shape):
        return "has no valid shape"
    if (not isinstance(offsets, list) or len(offsets) != 2
            or not all(isinstance(o, int) and not isinstance(o, bool) and o >= 0 for o in offsets)
            or offsets[0] > offsets[1]):
        return "has no valid data_offsets"
    count = 1
    for d in shape:
        count *= d
    needed = count * _ITEM_BYTES[dtype]
    if offsets[1] - offsets[0] != needed:
        return f"holds {offsets[1] - offsets[0]} bytes, but its shape {shape} needs {needed}"
    return None


def read_config(path: str | os.PathLike) -> ModelConfig:
    _, metadata = read_header(path)
    return _config_from_metadata(path, metadata)


def _config_from_metadata(path, metadata: dict[str, str]) -> ModelConfig:
    if metadata.get("format") != FORMAT_TAG or "config" not in metadata:
        raise ModelFileError(
            f"{path} is a safetensors file but not a Fractal Studio model (no configuration in its "
            "metadata); convert published checkpoints with `fractal-studio convert`")
    try:
        names = load_json(metadata.get("class_names", "[]"), "its class names")
        if not isinstance(names, list):
            raise ValueError(f"its class names must be a list of strings, not {type(names).__name__}")
        return ModelConfig.from_json(metadata["config"], class_names=tuple(names))
    except (UserError, ValueError, TypeError, KeyError, AttributeError) as error:
        raise ModelFileError(f"{path} has an invalid configuration: {error}") from error


def load_model(path: str | os.PathLike, device: str | torch.device = "cpu") -> FractalModel:
    """A ready model in eval mode on `device`; every tensor checked against the configuration."""
    header, metadata = read_header(path)
    config = _config_from_metadata(path, metadata)
    check_model_header(header, config, str(path))
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        state = load_file(str(path), device=str(device))
    except (SafetensorError, OSError, RuntimeError) as error:
        raise ModelFileError(f"{path} could not be read: {error}") from error
    broken = [name for name, tensor in state.items() if not bool(torch.isfinite(tensor).all())]
    if broken:
        raise ModelFileError(f"{path} is damaged: {len(broken)} tensors hold NaN or infinite values "
                             f"({_names(broken, 3)})")
    state = {name: tensor.float() for name, tensor in state.items()}
    model = model_without_weights(config)
    model.load_state_dict(state, strict=True, assign=True)
    model.init_computed_buffers(device)
    return model.eval()


def file_hash(path: str | os.PathLike) -> str:
    """Hex sha256 of a file, read in 1 MiB chunks (model files are large)."""
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                digest.update(chunk)
    except OSError as error:
        raise ModelFileError(f"cannot read {path}: {error.strerror or error}") from error
    return digest.hexdigest()
