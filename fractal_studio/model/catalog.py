"""The bundled models (NAME.safetensors, each with its card NAME.md) and what --model means.

The bundled models are the package data `fractal_studio.models`: pyproject.toml maps that package to
the checkout's models/, so an installed wheel has them in site-packages/fractal_studio/models/ and an
editable install reads models/ in place; both are found through importlib.resources.

One home for the command line and the app: both list and resolve models here. A name is looked up
among the bundled models first, then among the installed ones (model/download.py: the published
checkpoints and others fetched with `fractal-studio models get`). No Qt, no torch.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

from fractal_studio.errors import UserError
from fractal_studio.model.published import PUBLISHED, format_bytes
from fractal_studio.untrusted import check_path

if TYPE_CHECKING:  # download.py imports the HTTP modules: not at `--help`
    from fractal_studio.model.download import InstalledModel


def _bundled_folder() -> Path:
    """The folder of the package fractal_studio.models. A checkout that is imported without being
    installed (PYTHONPATH=.) has no such package; its models/ next to fractal_studio/ is the same folder."""
    try:
        return Path(str(resources.files("fractal_studio.models")))
    except ModuleNotFoundError:
        return Path(__file__).resolve().parents[2] / "models"


MODELS_DIR = _bundled_folder()
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
    path = check_path(Path(text).expanduser(), "--model")
    if path.is_file():
        return path
    if path.is_dir():
        raise UserError(f"--model {text} is a folder; pass a .safetensors file or a bundled model name")
    if path.exists():  # a FIFO or a device: reading it would block or never end
        raise UserError(f"--model {text} is not a regular file (a device, pipe or socket); pass a "
                        ".safetensors file")
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
    available = sorted(model.name for model in bundled_models(folder))
    others = [model.name for model in installed_models(installed)]
    more = f"; installed models: {', '.join(others)}" if others else ""
    if not available:  # an installation without its package data: nothing the user named is wrong
        return UserError(f"bundled model {name!r} not found: this installation has no bundled models "
                         f"(nothing in {folder}); reinstall fractal-studio, or pass --model "
                         f"PATH.safetensors{more}")
    return UserError(f"bundled model {name!r} not found (bundled models: {', '.join(available)}{more}); "
                     f"pass --model PATH.safetensors, or train a model with "
                     f"`fractal-studio train --out {name}{SUFFIX}`")


def available_models(folder: Path = MODELS_DIR,
                     installed: Path | None = None) -> list[BundledModel | InstalledModel]:
    """Every model --model can name: the bundled ones, then the installed ones a bundled one does not hide."""
    from fractal_studio.model.download import installed_models

    bundled = bundled_models(folder)
    names = {model.name for model in bundled}
    return [*bundled, *(model for model in installed_models(installed) if model.name not in names)]


def _looks_like_path(text: str) -> bool:
    return Path(text).suffix.lower() == SUFFIX or "/" in text or "\\" in text
