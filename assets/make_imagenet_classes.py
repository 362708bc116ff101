"""Writes fractal_studio/assets/imagenet_classes.txt (the 1000 ImageNet-1k class names, one per line, in
class-index order) from the metadata that torchvision ships in its wheel (torchvision/models/_meta.py).

    pip download --no-deps torchvision -d /tmp/tv
    python assets/make_imagenet_classes.py /tmp/tv/torchvision-*.whl

Reads the wheel as a zip file, so torchvision need not be installed (or importable).
"""

from __future__ import annotations

import ast
import sys
import zipfile
from pathlib import Path

OUT = Path(__file__).resolve().parents[1] / "fractal_studio" / "assets" / "imagenet_classes.txt"


def categories_from_wheel(wheel: str) -> list[str]:
    with zipfile.ZipFile(wheel) as archive:
        source = archive.read("torchvision/models/_meta.py").decode()
    for node in ast.parse(source).body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", "") == "_IMAGENET_CATEGORIES"
                                                for t in node.targets):
            return list(ast.literal_eval(node.value))
    raise SystemExit(f"{wheel}: no _IMAGENET_CATEGORIES in torchvision/models/_meta.py")


def main() -> None:
    names = categories_from_wheel(sys.argv[1])
    if len(names) != 1000:
        raise SystemExit(f"expected 1000 class names, found {len(names)}")
    OUT.write_text("".join(f"{name}\n" for name in names), encoding="utf-8")
    print(f"wrote {len(names)} names to {OUT}")


if __name__ == "__main__":
    main()
