"""The wheel carries the bundled models and assets, and an installed copy finds them in its own package."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LIMIT = 25 * 2**20  # bytes a file in the repository (and so in the wheel) may have


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """The wheel built from a copy of the checkout (pip builds in place: no build/ in the checkout)."""
    pytest.importorskip("setuptools", minversion="70.1")  # the test extra: builds wheels without `wheel`
    source = tmp_path_factory.mktemp("source")
    skip = shutil.ignore_patterns("__pycache__", "*.pyc", "*.state.pt")
    for name in ("fractal_studio", "models"):
        shutil.copytree(ROOT / name, source / name, ignore=skip)
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy2(ROOT / name, source / name)
    out = tmp_path_factory.mktemp("dist")
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", str(source), "--no-deps",
                            "--no-build-isolation", "--no-index", "-q", "-w", str(out)],
                           capture_output=True, text=True, timeout=300)
    assert built.returncode == 0, built.stderr[-3000:]
    (path,) = out.glob("fractal_studio-*.whl")
    return path


def bundled_files() -> list[Path]:
    models = ROOT / "models"
    return sorted([*models.glob("*.safetensors"), *models.glob("*.md")])


def test_the_wheel_holds_every_module_the_bundled_models_their_cards_and_the_class_names(wheel):
    with zipfile.ZipFile(wheel) as archive:
        sizes = {info.filename: info.file_size for info in archive.infolist()}
    modules = {path.relative_to(ROOT).as_posix() for path in (ROOT / "fractal_studio").rglob("*.py")}
    assert modules <= sizes.keys(), f"not in the wheel: {sorted(modules - sizes.keys())}"
    assert {"photo_64.safetensors", "photo_64.md", "fashion_mnist.safetensors"} <= {
        path.name for path in bundled_files()}
    for path in bundled_files():
        name = f"fractal_studio/models/{path.name}"
        assert sizes.get(name) == path.stat().st_size, name
        assert sizes[name] <= LIMIT, f"{name} is over 25 MB"
    classes = "fractal_studio/assets/imagenet_classes.txt"
    assert sizes.get(classes) == (ROOT / classes).stat().st_size
    outside = [name for name in sizes if not name.startswith(("fractal_studio/", "fractal_studio-"))]
    assert outside == []


def test_the_wheel_holds_the_desktop_entry_the_icons_the_licence_and_the_gui_script(wheel):
    from fractal_studio import desktop

    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        (entry_points,) = [name for name in names if name.endswith(".dist-info/entry_points.txt")]
        scripts = archive.read(entry_points).decode()
    assets = "fractal_studio/assets/"
    wanted = {f"{assets}{desktop.DESKTOP_ID}.desktop", f"{assets}{desktop.DESKTOP_ID}.metainfo.xml",
              f"{assets}icons/fractal-studio.svg",
              *(f"{assets}icons/fractal-studio-{size}.png" for size in desktop.ICON_SIZES)}
    assert wanted <= names, sorted(wanted - names)
    assert any(name.endswith("LICENSE") and ".dist-info/" in name for name in names)
    assert "[gui_scripts]\nfractal-studio-gui = fractal_studio.cli.main:gui_main" in scripts


CHILD = r"""
import sys
sys.path.insert(0, sys.argv[1])
from pathlib import Path
from fractal_studio.model.catalog import MODELS_DIR, bundled_models, resolve_model
from fractal_studio.model.convert import IMAGENET_CLASSES_FILE
site = Path(sys.argv[1]).resolve() / "fractal_studio"
assert MODELS_DIR == site / "models", MODELS_DIR
assert resolve_model() == site / "models" / "photo_64.safetensors"
assert resolve_model("fashion_mnist") == site / "models" / "fashion_mnist.safetensors"
model = bundled_models()[0]
assert (model.name, model.card) == ("photo_64", site / "models" / "photo_64.md"), model
assert IMAGENET_CLASSES_FILE == site / "assets" / "imagenet_classes.txt" and IMAGENET_CLASSES_FILE.is_file()
print("ok")
"""


def test_an_installed_wheel_finds_its_bundled_models_in_its_own_package(wheel, tmp_path):
    site = tmp_path / "site-packages"
    with zipfile.ZipFile(wheel) as archive:  # what pip installs from a pure-Python wheel
        archive.extractall(site)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    out = subprocess.run([sys.executable, "-c", CHILD, str(site)], capture_output=True, text=True,
                         cwd=elsewhere, timeout=120)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.strip() == "ok"
