"""The bundled models (models/NAME.safetensors, each with its card models/NAME.md) and what --model means.

One home for the command line and the app: both list and resolve models here. A name is looked up
among the bundled models first, then among the installed ones (model/download.py: the published
checkpoints and others fetched with `fractal-studio models get`). No Qt, no torch.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from fractal_studio.errors import UserError
from fractal_studio.model.published import PUBLISHED, format_bytes

if TYPE_CHECKING:  # download.py imports the HTTP modules: not at `--help`
    from fractal_studio.model.download import InstalledModel

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


def resolve_model(name_or_path: str | None = None, folder: Path = MODELS_DIR,
                  installed: Path | None = None) -> Path:
    """The model file for a name or path: an existing file, folder/NAME.safetensors (default photo_64),
    or an installed model of that name (in `installed`, by default download.models_dir())."""
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
    from fractal_studio.model.download import models_dir

    installed = models_dir() if installed is None else installed
    if (installed / f"{text}{SUFFIX}").is_file():
        return installed / f"{text}{SUFFIX}"
    raise _not_found(text, folder, installed)


def _not_found(name: str, folder: Path, installed: Path) -> UserError:
    from fractal_studio.model.download import installed_models

    if name in PUBLISHED:
        size = format_bytes(PUBLISHED[name].download_bytes)
        return UserError(f"model {name!r} is not installed; download it ({size}) with "
                         f"`fractal-studio models get {name}`")
    bundled = folder / f"{name}{SUFFIX}"
    available = sorted(model.name for model in bundled_models(folder))
    hint = f" (bundled models: {', '.join(available)})" if available else ""
    others = [model.name for model in installed_models(installed)]
    more = f"; installed models: {', '.join(others)}" if others else ""
    return UserError(f"bundled model {name!r} not found ({bundled}){hint}; train it with "
                     f"`fractal-studio train --out {bundled}` or pass --model PATH.safetensors{more}")


def available_models(folder: Path = MODELS_DIR,
                     installed: Path | None = None) -> list[BundledModel | InstalledModel]:
    """Every model --model can name: the bundled ones, then the installed ones a bundled one does not hide."""
    from fractal_studio.model.download import installed_models

    bundled = bundled_models(folder)
    names = {model.name for model in bundled}
    return [*bundled, *(model for model in installed_models(installed) if model.name not in names)]


def _looks_like_path(text: str) -> bool:
    return Path(text).suffix.lower() == SUFFIX or "/" in text or "\\" in text
