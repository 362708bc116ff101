"""Scene items that draw numpy buffers in place (image, mask overlay, changed-pixels overlay).

Each item owns an ARGB32-premultiplied buffer shared with a QImage; painting draws only the exposed
part, and writers call `update_box` for the rectangle they changed, so nothing is re-rendered whole.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QRectF
from PySide6.QtGui import QBrush, QColor, QImage, QPainter, QPixmap
from PySide6.QtWidgets import QGraphicsItem, QStyleOptionGraphicsItem

from fractal_studio.app.mask_tools import MaskLayer
from fractal_studio.editing.windows import Rect


def bgra_from_rgb(pixels: np.ndarray, empty: np.ndarray | None = None) -> np.ndarray:
    """uint8 [H, W, 4] in ARGB32 memory order (B, G, R, A); transparent where `empty`."""
    h, w = pixels.shape[:2]
    out = np.empty((h, w, 4), np.uint8)
    out[..., 0] = pixels[..., 2]
    out[..., 1] = pixels[..., 1]
    out[..., 2] = pixels[..., 0]
    out[..., 3] = 255
    if empty is not None:
        out[empty] = 0
    return out


class BufferItem(QGraphicsItem):
    """Draws `self.buffer` (uint8 [H, W, 4], premultiplied B, G, R, A) at scene (0, 0), 1 unit = 1 pixel."""

    def __init__(self, smooth: bool = True):
        super().__init__()
        self.buffer = np.zeros((1, 1, 4), np.uint8)
        self.qimage = QImage()
        self.smooth = smooth
        self.setFlag(QGraphicsItem.GraphicsItemFlag.ItemUsesExtendedStyleOption, True)

    def set_buffer(self, buffer: np.ndarray) -> None:
        self.prepareGeometryChange()
        self.buffer = np.ascontiguousarray(buffer)
        h, w = self.buffer.shape[:2]
        self.qimage = QImage(self.buffer.data, w, h, w * 4, QImage.Format.Format_ARGB32_Premultiplied)
        self.update()

    def share(self, layer: MaskLayer) -> None:
        """Draws the mask layer's overlay (same memory, no copy)."""
        self.prepareGeometryChange()
        self.buffer = layer.argb
        self.qimage = layer.image
        self.update()

    def update_box(self, box: Rect | None) -> None:
        if box is not None:
            self.update(QRectF(box.left, box.top, box.width, box.height))

    def boundingRect(self) -> QRectF:  # noqa: N802 (Qt API)
        return QRectF(0, 0, self.buffer.shape[1], self.buffer.shape[0])

    def paint(self, painter: QPainter, option: QStyleOptionGraphicsItem, widget=None) -> None:
        if self.qimage.isNull():
            return
        exposed = option.exposedRect.intersected(self.boundingRect()).toAlignedRect()
        if exposed.isEmpty():
            return
        scale = painter.worldTransform().m11()
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, self.smooth and scale < 1.0)
        painter.drawImage(QRectF(exposed), self.qimage, QRectF(exposed))


class CheckerItem(QGraphicsItem):
    """A checkerboard under the canvas: shows through where the canvas is still empty."""

    def __init__(self):
        super().__init__()
        self.rect = QRectF(0, 0, 1, 1)
        tile = QPixmap(16, 16)
        tile.fill(QColor(204, 204, 204))
        p = QPainter(tile)
        p.fillRect(0, 0, 8, 8, QColor(153, 153, 153))
        p.fillRect(8, 8, 8, 8, QColor(153, 153, 153))
        p.end()
        self.brush = QBrush(tile)

    def set_size(self, w: int, h: int) -> None:
        self.prepareGeometryChange()
        self.rect = QRectF(0, 0, w, h)

    def boundingRect(self) -> QRectF:  # noqa: N802 (Qt API)
        return self.rect

    def paint(self, painter: QPainter, option, widget=None) -> None:
        # The tile keeps its screen size whatever the zoom.
        painter.save()
        transform = painter.worldTransform()
        painter.resetTransform()
        painter.fillRect(transform.mapRect(self.rect), self.brush)
        painter.restore()


def heat_overlay(bits: np.ndarray, scale: float) -> np.ndarray:
    """A premultiplied BGRA buffer of a surprise map: dark and clear where the model spends few bits,
    bright orange to yellow and opaque where it spends `scale` or more (bits per dimension)."""
    import cv2

    level = np.clip(bits / scale * 255.0, 0, 255).astype(np.uint8)
    colours = cv2.applyColorMap(level, cv2.COLORMAP_INFERNO)  # BGR
    alpha = (60 + level.astype(np.uint16) * 170 // 255).astype(np.uint16)
    out = np.empty(bits.shape + (4,), np.uint8)
    out[..., :3] = (colours.astype(np.uint16) * alpha[..., None] // 255).astype(np.uint8)
    out[..., 3] = alpha.astype(np.uint8)
    return out


def pins_overlay(pins: np.ndarray | None, mask: np.ndarray) -> np.ndarray:
    """A premultiplied BGRA buffer of the pins that count (opaque, inside the mask) in their own
    colours, transparent elsewhere: drawn over the mask's tint, they show as the exact pixels the
    fill will keep."""
    from fractal_studio.editing.pins import pinned

    out = np.zeros((*mask.shape, 4), np.uint8)
    if pins is None:
        return out
    where = pinned(pins, mask)
    out[where] = pins[where][:, [2, 1, 0, 3]]  # R, G, B, A -> B, G, R, A (opaque: premultiplied as is)
    return out


def changed_overlay(changed: np.ndarray) -> np.ndarray:
    """A premultiplied BGRA buffer: opaque cyan where pixels changed, transparent elsewhere."""
    h, w = changed.shape
    out = np.zeros((h, w, 4), np.uint8)
    out[changed] = (200, 200, 0, 200)  # B, G, R, A premultiplied (cyan at alpha 200)
    return out

