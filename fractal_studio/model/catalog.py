"""The bundled models (models/NAME.safetensors, each with its card models/NAME.md) and what --model means.

One home for the command line and the app: both list and resolve models here. No Qt, no torch.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from fractal_studio.errors import UserError

MODELS_DIR = Path(__file__).resolve().parents[2] / "models"
DEFAULT_MODEL = "photo_64"
SUFFIX = ".safetensors"


@dataclass(frozen=True)
class BundledModel:
    name: str  # what --model and the app's menu call it: the file name without .safetensors
    path: Path
    card: Path | None  # the model card (data, licences, how it was trained), when there is one


def bundled_models(folder: Path = MODELS_DIR) -> list[BundledModel]:
    """The models in `folder`, the default one first (the app falls back to the first), then by name."""
    if not folder.is_dir():
        return []
    paths = sorted(folder.glob(f"*{SUFFIX}"), key=lambda p: (p.stem != DEFAULT_MODEL, p.name))
    return [BundledModel(p.stem, p, _card(p)) for p in paths]


def _card(path: Path) -> Path | None:
    card = path.with_suffix(".md")
    return card if card.is_file() else None


def resolve_model(name_or_path: str | None = None, folder: Path = MODELS_DIR) -> Path:
    """The model file for a name or path: an existing file, or folder/NAME.safetensors (default photo_64)."""
    text = (name_or_path or "").strip() or DEFAULT_MODEL
    path = Path(text).expanduser()
    if path.is_file():
        return path
    if path.is_dir():
        raise UserError(f"--model {text} is a folder; pass a .safetensors file or a bundled model name")
    if _looks_like_path(text):
        raise UserError(f"model file not found: {text}")
    bundled = folder / f"{text}{SUFFIX}"
    if bundled.is_file():
        return bundled
    available = sorted(model.name for model in bundled_models(folder))
    hint = f" (bundled models: {', '.join(available)})" if available else ""
    raise UserError(f"bundled model {text!r} not found ({bundled}){hint}; train it with "
                    f"`fractal-studio train --out {bundled}` or pass --model PATH.safetensors")


def _looks_like_path(text: str) -> bool:
    return Path(text).suffix.lower() == SUFFIX or "/" in text or "\\" in text
