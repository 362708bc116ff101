"""Draws the app's icon: fractal_studio/assets/icons/fractal-studio.svg and PNGs of the usual sizes.

    .venv/bin/python tools/make_icon.py

The icon is the model's idea in one picture: a square cut into 2x2 patches, one of them cut again,
and so on, a coarse-to-fine spiral of patches whose colours sample one smooth evening-sky gradient,
so the big patches read as a coarse picture and the small ones as its finer detail. Drawn here from
that geometry (no art from elsewhere); the SVG and the PNGs come from the same list of rectangles.
"""

from __future__ import annotations

import math
from pathlib import Path

from PIL import Image, ImageDraw

OUT = Path(__file__).resolve().parents[1] / "fractal_studio" / "assets" / "icons"
SIZES = (16, 24, 32, 48, 64, 128, 256, 512)
UNIT = 256  # the drawing's own coordinates
BACKGROUND = (24, 28, 46)
# The colour field: corners of the square, blended bilinearly (top-left, top-right, bottom-left, bottom-right)
CORNERS = ((255, 208, 80), (255, 92, 56), (56, 124, 255), (204, 44, 164))
# Corner each level recurses into (0 TL, 1 TR, 2 BR, 3 BL): clockwise, a spiral toward the middle
SPIRAL = (1, 2, 3, 0)
DEPTH = 5


def colour(x: float, y: float) -> tuple[int, int, int]:
    u, v = (min(max((t / UNIT - 0.5) * 1.5 + 0.5, 0.0), 1.0) for t in (x, y))  # stretched: vivid corners
    tl, tr, bl, br = CORNERS
    return tuple(round((1 - v) * ((1 - u) * a + u * b) + v * ((1 - u) * c + u * d))
                 for a, b, c, d in zip(tl, tr, bl, br))


def tiles(x: float, y: float, size: float, level: int = 0, smallest: float = 0.0):
    """(x, y, size, radius, colour) of every patch: 2x2 patches, one of which is cut again (down to
    DEPTH levels, and not into patches smaller than `smallest`)."""
    half = size / 2
    gap = max(size * 0.045, 1.0)
    corners = ((x, y), (x + half, y), (x + half, y + half), (x, y + half))
    for index, (cx, cy) in enumerate(corners):
        if index == SPIRAL[level % 4] and level + 1 < DEPTH and half / 2 >= smallest:
            yield from tiles(cx, cy, half, level + 1, smallest)
            continue
        side = half - gap
        ox, oy = cx + gap / 2, cy + gap / 2
        yield ox, oy, side, side * 0.18, colour(ox + side / 2, oy + side / 2)


def shapes(smallest: float = 0.0):
    margin = 26
    return [(0, 0, UNIT, 52, BACKGROUND), *tiles(margin, margin, UNIT - 2 * margin, smallest=smallest)]


def svg() -> str:
    rects = "\n".join(f'  <rect x="{x:.2f}" y="{y:.2f}" width="{s:.2f}" height="{s:.2f}" rx="{r:.2f}" '
                      f'fill="#{c[0]:02x}{c[1]:02x}{c[2]:02x}"/>' for x, y, s, r, c in shapes())
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{UNIT}" height="{UNIT}" '
            f'viewBox="0 0 {UNIT} {UNIT}">\n  <title>Fractal Studio</title>\n{rects}\n</svg>\n')


def png(size: int) -> Image.Image:
    scale = 8 if size <= 64 else 4
    big = size * scale
    image = Image.new("RGBA", (big, big), (0, 0, 0, 0))
    draw = ImageDraw.Draw(image)
    k = big / UNIT
    for x, y, s, r, c in shapes(smallest=2.5 * UNIT / size):  # no patch under 2.5 pixels at this size
        draw.rounded_rectangle((x * k, y * k, (x + s) * k - 1, (y + s) * k - 1), radius=math.floor(r * k),
                               fill=(*c, 255))
    return image.resize((size, size), Image.Resampling.LANCZOS)


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "fractal-studio.svg").write_text(svg(), encoding="utf-8")
    for size in SIZES:
        png(size).save(OUT / f"fractal-studio-{size}.png", optimize=True)
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
