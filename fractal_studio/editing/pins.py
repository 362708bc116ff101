"""Pins: pixels inside the hole that the user fixes before a fill, and the fill is drawn around.

Pins are an RGBA uint8 array [H, W, 4] of the image's size. A pixel is a pin when its alpha is 255
(fully opaque) and it lies inside the mask; every other pixel of the array is ignored: partly
transparent pixels (a soft brush's edge, an anti-aliased dot) are not pins, since a pin is kept
exactly and a half-kept pixel has no exact value; pixels outside the mask are kept anyway.

Before a run, the pins' colours are written into a copy of the image and the pins leave the mask
(`with_pins`): to the sampler they are known pixels like any outside the hole, at every working
scale where a model pixel is all pins (a downscaled pixel is known only when all its source pixels
are), and the compositing, which changes only pixels inside the mask, keeps them bit for bit.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fractal_studio.errors import UserError

OPAQUE = 255  # the alpha of a pin


def check_pins(pins, shape: tuple[int, int]) -> np.ndarray:
    """`pins` if it is an RGBA uint8 array of `shape` (height, width), else a UserError."""
    if not isinstance(pins, np.ndarray) or pins.dtype != np.uint8 or pins.ndim != 3 or pins.shape[2] != 4:
        got = f"{pins.dtype} {pins.shape}" if isinstance(pins, np.ndarray) else type(pins).__name__
        raise UserError(f"the pins must be an RGBA uint8 array [H, W, 4], got {got}")
    if pins.shape[:2] != tuple(shape):
        raise UserError(f"the pins are {pins.shape[1]}×{pins.shape[0]} but the image is "
                        f"{shape[1]}×{shape[0]}; the pins must have the image's size")
    return pins


def pinned(pins: np.ndarray | None, mask: np.ndarray) -> np.ndarray:
    """bool [H, W]: the pins that count, the opaque pixels inside the mask."""
    if pins is None:
        return np.zeros(mask.shape, bool)
    return (check_pins(pins, mask.shape)[..., 3] == OPAQUE) & mask


@dataclass(frozen=True)
class Pinned:
    """The inputs of a run with the pins applied: the image holds the pins' colours, and neither the
    mask nor the blank area holds a pin."""

    image: np.ndarray
    mask: np.ndarray
    blank: np.ndarray | None
    pins: np.ndarray  # bool [H, W]: the pins that count


def with_pins(image: np.ndarray, mask: np.ndarray, pins: np.ndarray | None,
              blank: np.ndarray | None = None) -> Pinned:
    """The run's inputs with `pins` applied (the arrays given are never written into)."""
    where = pinned(pins, mask)
    if not where.any():
        return Pinned(image, mask, blank, where)
    if bool((mask & ~where).sum() == 0):
        raise UserError("every pixel of the mask is pinned: nothing is left to generate")
    image = image.copy()
    image[where] = pins[where][:, :3]
    return Pinned(image, mask & ~where, None if blank is None else blank & ~where, where)


def empty_pins(shape: tuple[int, int]) -> np.ndarray:
    """No pins: a transparent RGBA array of `shape` (height, width)."""
    return np.zeros((*shape, 4), np.uint8)
