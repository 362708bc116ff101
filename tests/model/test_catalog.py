"""The bundled models and --model names: one listing for the command line and the app."""

from __future__ import annotations

import subprocess
import sys
from importlib import resources
from pathlib import Path

import pytest

from fractal_studio.errors import UserError
from fractal_studio.model.catalog import MODELS_DIR, BundledModel, bundled_models, resolve_model


@pytest.fixture
def folder(tmp_path):
    """A models folder: the default model without a card, another with one, and a stray card."""
    for name in ("zebra", "photo_64", "animals"):
        (tmp_path / f"{name}.safetensors").write_bytes(b"x")
    (tmp_path / "animals.md").write_text("# animals\n")
    (tmp_path / "notes.md").write_text("not a model\n")
    return tmp_path


def test_bundled_models_list_the_default_first_then_by_name_with_their_cards(folder):
    assert bundled_models(folder) == [
        BundledModel("photo_64", folder / "photo_64.safetensors", None),
        BundledModel("animals", folder / "animals.safetensors", folder / "animals.md"),
        BundledModel("zebra", folder / "zebra.safetensors", None),
    ]
    assert bundled_models(folder / "missing") == []


def test_resolve_model_takes_a_file_a_bundled_name_or_the_default(folder, tmp_path_factory):
    elsewhere = tmp_path_factory.mktemp("elsewhere") / "mine.safetensors"
    elsewhere.write_bytes(b"x")
    assert resolve_model(str(elsewhere), folder) == elsewhere
    assert resolve_model(" animals ", folder) == folder / "animals.safetensors"
    assert resolve_model(None, folder) == resolve_model("", folder) == folder / "photo_64.safetensors"


def test_resolve_model_explains_what_is_wrong(folder, tmp_path_factory):
    installed = tmp_path_factory.mktemp("installed")
    with pytest.raises(UserError, match=r"^bundled model 'cats' not found \(bundled models: animals, "
                                        r"photo_64, zebra\); pass --model PATH.safetensors, or train a "
                                        r"model with `fractal-studio train --out cats.safetensors`$"):
        resolve_model("cats", folder, installed)
    empty = tmp_path_factory.mktemp("site-packages") / "fractal_studio" / "models"
    with pytest.raises(UserError) as missing:  # a broken installation: no advice to train into it
        resolve_model(None, empty, installed)
    assert str(missing.value) == (f"bundled model 'photo_64' not found: this installation has no bundled "
                                  f"models (nothing in {empty}); reinstall fractal-studio, or pass --model "
                                  f"PATH.safetensors")
    with pytest.raises(UserError, match="model file not found: nowhere/cats.safetensors"):
        resolve_model("nowhere/cats.safetensors", folder)
    with pytest.raises(UserError, match="is a folder"):
        resolve_model(str(folder), folder)


def test_the_bundled_models_are_the_package_data_of_fractal_studio_models():
    folder = Path(str(resources.files("fractal_studio.models")))
    assert MODELS_DIR == folder
    assert resolve_model() == folder / "photo_64.safetensors"
    assert [model.name for model in bundled_models()][:1] == ["photo_64"]
    assert {"photo_64", "fashion_mnist"} <= {model.name for model in bundled_models()}
    assert all(model.card == folder / f"{model.name}.md" for model in bundled_models())


def test_the_model_package_offers_load_and_save_without_qt_or_torch_at_import():
    code = ("import sys, fractal_studio.model as m, fractal_studio.model.catalog\n"
            "assert 'torch' not in sys.modules and 'PySide6' not in sys.modules, 'imported too much'\n"
            "from fractal_studio.model import load_model, save_model\n"
            "from fractal_studio.model import weights\n"
            "assert (load_model, save_model) == (weights.load_model, weights.save_model)\n"
            "assert 'PySide6' not in sys.modules\n")
    subprocess.run([sys.executable, "-c", code], check=True)
