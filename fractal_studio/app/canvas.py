"""The canvas view: shows the document, paints the mask, drags the borders outward to outpaint.

It displays what it is given and emits intents (`maskStroked`, `extendRequested`); the main window
turns those into undoable commands on the Document.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QEvent, QPoint, QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QColor, QPen
from PySide6.QtWidgets import (
    QGraphicsEllipseItem,
    QGraphicsRectItem,
    QGraphicsScene,
    QGraphicsSimpleTextItem,
    QGraphicsView,
)

from fractal_studio.app.layers import BufferItem, CheckerItem, bgra_from_rgb, changed_overlay, pins_overlay
from fractal_studio.app.mask_tools import MaskLayer
from fractal_studio.editing.windows import Rect

TOOLS = ("brush", "eraser", "rect", "pan")
MIN_ZOOM, MAX_ZOOM = 0.02, 64.0
EDGE_GRAB_PX = 8  # how close (screen pixels) to a border a drag resizes the canvas


class CanvasView(QGraphicsView):
    maskStroked = Signal(object, str)  # the Rect a finished stroke or rectangle touched; its undo text
    extendRequested = Signal(int, int, int, int)  # left, top, right, bottom pixels to add
    extendDragged = Signal(int, int, int, int)  # the growth while a border is dragged (0s: done)
    zoomChanged = Signal(float)
    brushChanged = Signal(float, float)  # size, hardness
    pinClicked = Signal(float, float, str)  # image point; "pin", "erase" (Alt) or "pick" (Ctrl: its colour)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setScene(QGraphicsScene(self))
        self.setBackgroundBrush(QColor(48, 48, 52))
        # Zooming keeps a chosen point still itself (zoom_by), so Qt's own anchoring is off.
        self.setTransformationAnchor(QGraphicsView.ViewportAnchor.NoAnchor)
        self.setViewportUpdateMode(QGraphicsView.ViewportUpdateMode.MinimalViewportUpdate)
        self.setMouseTracking(True)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAsNeeded)
        self.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAsNeeded)
        self.setFrameShape(QGraphicsView.Shape.NoFrame)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setAcceptDrops(False)  # the main window takes drops
        self.viewport().grabGesture(Qt.GestureType.PinchGesture)
        self.checker = CheckerItem()
        self.image_item = BufferItem()
        self.mask_item = BufferItem(smooth=False)
        self.changed_item = BufferItem(smooth=False)
        self.changed_item.setVisible(False)
        self.heat_item = BufferItem(smooth=False)  # View › Surprise map
        self.heat_item.setVisible(False)
        self.pins_item = BufferItem(smooth=False)  # the Pin tool's dots, over the mask's tint
        for z, item in enumerate((self.checker, self.image_item, self.mask_item, self.pins_item,
                                  self.heat_item, self.changed_item)):
            item.setZValue(z)
            self.scene().addItem(item)
        self.cursor_item = QGraphicsEllipseItem()
        self.cursor_item.setPen(_cosmetic(QColor(255, 255, 255), 1.5))
        self.cursor_item.setZValue(10)
        self.cursor_item.setVisible(False)
        self._hover = False  # the mouse is over the canvas (the brush circle follows it)
        self.scene().addItem(self.cursor_item)
        self.frame_item = QGraphicsRectItem()
        self.frame_item.setPen(_cosmetic(QColor(255, 200, 0), 2, Qt.PenStyle.DashLine))
        self.frame_item.setZValue(11)
        self.frame_item.setVisible(False)
        self.scene().addItem(self.frame_item)
        self.frame_label = QGraphicsSimpleTextItem()
        self.frame_label.setBrush(QColor(255, 200, 0))
        self.frame_label.setFlag(self.frame_label.GraphicsItemFlag.ItemIgnoresTransformations)
        self.frame_label.setZValue(12)
        self.scene().addItem(self.frame_label)
        self.layer = MaskLayer()
        self.tool = "brush"
        self.brush_size = 40.0
        self.hardness = 0.8
        self.painting_enabled = True
        self._pixels: np.ndarray | None = None
        self._empty: np.ndarray | None = None
        self._stroke: Rect | None = None
        self._last: tuple[float, float] | None = None
        self._rect_start: QPointF | None = None
        self._pan_from: QPointF | None = None
        self._space = False
        self._edge: str | None = None  # which border a resize drag holds ("r", "tl", ...)
        self._edge_start: QPointF | None = None

    # ------------------------------------------------------------------ display
    @property
    def canvas_size(self) -> tuple[int, int]:
        return self.layer.size

    def set_document(self, pixels: np.ndarray, coverage: np.ndarray, empty: np.ndarray | None) -> None:
        h, w = pixels.shape[:2]
        resized = (w, h) != self.canvas_size
        self._pixels, self._empty = pixels, empty
        self.image_item.set_buffer(bgra_from_rgb(pixels, empty))
        self.layer.load(coverage)
        self.mask_item.share(self.layer)
        self.checker.set_size(w, h)
        self.changed_item.setVisible(False)
        self._fit_scene_rect()
        if resized:
            self.fit()

    def update_document(self, pixels: np.ndarray, coverage: np.ndarray, empty: np.ndarray | None,
                        rect: Rect) -> None:
        """The document changed its pixels only inside `rect` (and its mask anywhere); same size."""
        if pixels.shape[:2] != self.image_item.buffer.shape[:2]:
            self.set_document(pixels, coverage, empty)
            return
        self._pixels, self._empty = pixels, empty
        self.restore_pixels(rect)
        self.reload_mask(coverage)

    def restore_pixels(self, box: Rect | None = None) -> None:
        """Shows the document again (after previews), only inside `box` when given."""
        if self._pixels is None or self.image_item.buffer.shape[:2] != self._pixels.shape[:2]:
            return
        h, w = self._pixels.shape[:2]
        box = (box or Rect(0, 0, w, h)).intersect(Rect(0, 0, w, h))
        rows, cols = box.slices
        empty = None if self._empty is None else self._empty[rows, cols]
        self.image_item.buffer[rows, cols] = bgra_from_rgb(self._pixels[rows, cols], empty)
        self.image_item.update_box(box)

    def draw_patch(self, left: int, top: int, patch: np.ndarray) -> None:
        """Draws streamed pixels into the image buffer (a live preview); repaints only that box."""
        buf = self.image_item.buffer
        h, w = patch.shape[:2]
        bottom, right = min(top + h, buf.shape[0]), min(left + w, buf.shape[1])
        if bottom <= top or right <= left:
            return
        buf[top:bottom, left:right] = bgra_from_rgb(patch[: bottom - top, : right - left])
        self.image_item.update_box(Rect.spanning(left, top, right, bottom))

    def reload_mask(self, coverage: np.ndarray, rect: Rect | None = None) -> None:
        """Shows the document's mask coverage again, all of it or inside `rect`."""
        if rect is None or coverage.shape != self.layer.coverage.shape:
            self.layer.load(coverage)
            self.mask_item.share(self.layer)
        else:
            self.layer.load_rect(coverage, rect)
            self.mask_item.update_box(rect)

    def set_mask_visible(self, visible: bool) -> None:
        self.mask_item.setVisible(visible)
        self.pins_item.setVisible(visible)

    def show_pins(self, pins: np.ndarray | None, mask: np.ndarray, rect: Rect | None = None) -> None:
        """Shows the pins that count (opaque, inside the mask), all of them or inside `rect`."""
        if rect is None or self.pins_item.buffer.shape[:2] != mask.shape:
            self.pins_item.set_buffer(pins_overlay(pins, mask))
            return
        rows, cols = rect.slices
        self.pins_item.buffer[rows, cols] = pins_overlay(None if pins is None else pins[rows, cols],
                                                         mask[rows, cols])
        self.pins_item.update_box(rect)

    def show_changed(self, changed: np.ndarray | None, rect: Rect | None = None) -> None:
        """Overlays the changed pixels (bool, of `rect`'s size: the area a candidate can differ in)."""
        if changed is None:
            self.changed_item.setVisible(False)
            return
        self.changed_item.set_buffer(changed_overlay(changed))
        self.changed_item.setPos(rect.left if rect else 0, rect.top if rect else 0)
        self.changed_item.setVisible(True)

    # ------------------------------------------------------------------ zoom
    @property
    def zoom(self) -> float:
        return self.transform().m11()

    def set_zoom(self, zoom: float) -> None:
        zoom = min(max(zoom, MIN_ZOOM), MAX_ZOOM)
        factor = zoom / self.zoom
        self.scale(factor, factor)
        self._fit_scene_rect()
        self.zoomChanged.emit(self.zoom)
        self._update_cursor_item()

    def _fit_scene_rect(self) -> None:
        """What can be scrolled: the image, plus a quarter of a view around it when it is larger than
        the view (so its edges can be brought in for a border drag). An image that fits the view
        has no scroll bars."""
        w, h = self.canvas_size
        zoom = max(self.zoom, 1e-6)
        view_w, view_h = self.viewport().width() / zoom, self.viewport().height() / zoom
        slack = 2 / zoom  # a pixel of rounding must not bring the scroll bars back
        margin_x = view_w / 4 if w > view_w else max(0.0, (view_w - w) / 2 - slack)
        margin_y = view_h / 4 if h > view_h else max(0.0, (view_h - h) / 2 - slack)
        self.setSceneRect(QRectF(-margin_x, -margin_y, w + 2 * margin_x, h + 2 * margin_y))

    def resizeEvent(self, event) -> None:  # noqa: N802
        super().resizeEvent(event)
        self._fit_scene_rect()

    def zoom_by(self, factor: float, at: QPoint | None = None) -> None:
        """Zooms keeping the image point under `at` (viewport coordinates; default: the view's
        centre) where it is on the screen."""
        middle = QPointF(self.viewport().rect().center())
        anchor = middle if at is None else QPointF(at)
        fixed = self.mapToScene(anchor.toPoint())
        self.set_zoom(self.zoom * factor)
        self.centerOn(fixed + (middle - anchor) / self.zoom)

    def fit(self) -> None:
        w, h = self.canvas_size
        view = self.viewport().rect()
        zoom = min((view.width() - 24) / max(w, 1), (view.height() - 24) / max(h, 1))
        self.set_zoom(zoom if zoom > 0 else 1.0)
        self.centerOn(w / 2, h / 2)

    def actual_size(self) -> None:
        self.zoom_by(1.0 / self.zoom)

    def wheelEvent(self, event) -> None:  # noqa: N802
        if event.modifiers() & Qt.KeyboardModifier.ShiftModifier:
            self.set_brush(self.brush_size * (1.1 if event.angleDelta().y() > 0 else 1 / 1.1))
            return
        steps = event.angleDelta().y() / 120.0
        if steps:
            self.zoom_by(1.2 ** steps, event.position().toPoint())

    def viewportEvent(self, event) -> bool:  # noqa: N802
        if event.type() == QEvent.Type.Gesture:
            pinch = event.gesture(Qt.GestureType.PinchGesture)
            if pinch is not None:
                self.zoom_by(pinch.scaleFactor(), self.viewport().mapFromGlobal(
                    pinch.centerPoint().toPoint()))
                return True
        if (event.type() == QEvent.Type.NativeGesture
                and event.gestureType() == Qt.NativeGestureType.ZoomNativeGesture):
            self.zoom_by(1.0 + event.value(), event.position().toPoint())
            return True
        return super().viewportEvent(event)

    # ------------------------------------------------------------------ brush
    def set_tool(self, tool: str) -> None:
        self.tool = tool
        self._update_cursor_item()

    def set_brush(self, size: float | None = None, hardness: float | None = None) -> None:
        if size is not None:
            self.brush_size = float(min(max(size, 1.0), 2000.0))
        if hardness is not None:
            self.hardness = float(min(max(hardness, 0.0), 1.0))
        self._update_cursor_item()
        self.brushChanged.emit(self.brush_size, self.hardness)

    def update_cursor_at(self, point: tuple[float, float]) -> None:
        """Shows the brush circle at `point` as if the mouse were there (scripts, screenshots)."""
        self._hover = True
        self._update_cursor_item(QPointF(*point))

    def _update_cursor_item(self, scene_pos: QPointF | None = None) -> None:
        if scene_pos is None:
            scene_pos = self.cursor_item.rect().center()
        r = self.brush_size / 2
        self.cursor_item.setRect(QRectF(scene_pos.x() - r, scene_pos.y() - r, 2 * r, 2 * r))
        self.cursor_item.setVisible(self._hover and self.tool in ("brush", "eraser") and not self._space)

    # ------------------------------------------------------------------ mouse
    def mousePressEvent(self, event) -> None:  # noqa: N802
        pos = self.mapToScene(event.position().toPoint())
        # A canvas border is grabbed in every tool (the Pan tool pans everywhere else).
        edge = None
        if event.button() == Qt.MouseButton.LeftButton and self._pixels is not None and not self._space:
            edge = self._edge_at(pos)
        if edge:
            self._edge, self._edge_start = edge, pos
            self._update_frame(pos)
            return
        if event.button() == Qt.MouseButton.MiddleButton or (
                event.button() == Qt.MouseButton.LeftButton and (self._space or self.tool == "pan")):
            self._pan_from = event.position()
            self.viewport().setCursor(Qt.CursorShape.ClosedHandCursor)
            return
        if event.button() != Qt.MouseButton.LeftButton or self._pixels is None:
            return super().mousePressEvent(event)
        if not self.painting_enabled:
            return
        if self.tool in ("brush", "eraser"):
            p = (pos.x(), pos.y())
            self._stroke = self._paint(p, p)
            self.mask_item.update_box(self._stroke)
            self._last = p
        elif self.tool == "pin":
            modifiers = event.modifiers()
            mode = "pick" if modifiers & Qt.KeyboardModifier.ControlModifier else \
                "erase" if modifiers & Qt.KeyboardModifier.AltModifier else "pin"
            self.pinClicked.emit(pos.x(), pos.y(), mode)
        elif self.tool == "rect":
            self._rect_start = pos
            self.frame_item.setRect(QRectF(pos, pos))
            self.frame_item.setVisible(True)

    def mouseMoveEvent(self, event) -> None:  # noqa: N802
        pos = self.mapToScene(event.position().toPoint())
        self._hover = True
        self._update_cursor_item(pos)
        if self._pan_from is not None:
            delta = event.position() - self._pan_from
            self._pan_from = event.position()
            self.horizontalScrollBar().setValue(self.horizontalScrollBar().value() - int(delta.x()))
            self.verticalScrollBar().setValue(self.verticalScrollBar().value() - int(delta.y()))
            return
        if self._edge is not None:
            self._update_frame(pos)
            return
        if self._last is not None:
            p = (pos.x(), pos.y())
            box = self._paint(self._last, p)
            self.mask_item.update_box(box)
            self._stroke = box.union(self._stroke) if box else self._stroke
            self._last = p
            return
        if self._rect_start is not None:
            self.frame_item.setRect(QRectF(self._rect_start, pos).normalized())
            return
        self._hover_cursor(pos)

    def mouseReleaseEvent(self, event) -> None:  # noqa: N802
        pos = self.mapToScene(event.position().toPoint())
        if self._pan_from is not None:
            self._pan_from = None
            self.viewport().unsetCursor()
            return
        if self._edge is not None:
            grow = self._edge_growth(pos)
            self._edge = None
            self.frame_item.setVisible(False)
            self.frame_label.setText("")
            self.extendDragged.emit(0, 0, 0, 0)
            if any(grow):
                self.extendRequested.emit(*grow)
            return
        if self._last is not None:
            self._last = None
            stroke, self._stroke = self._stroke, None
            if stroke is not None:
                self.maskStroked.emit(stroke, "Eraser stroke" if self.tool == "eraser" else "Brush stroke")
            return
        if self._rect_start is not None:
            r = QRectF(self._rect_start, pos).normalized()
            self._rect_start = None
            self.frame_item.setVisible(False)
            erase = bool(event.modifiers() & Qt.KeyboardModifier.AltModifier)
            box = self.layer.fill_rect(
                Rect.spanning(round(r.left()), round(r.top()), round(r.right()), round(r.bottom())), erase)
            if box is not None:
                self.mask_item.update_box(box)
                self.maskStroked.emit(box, "Erase rectangle" if erase else "Mask rectangle")
            return
        super().mouseReleaseEvent(event)

    def _paint(self, p0, p1) -> Rect | None:
        return self.layer.paint_segment(p0, p1, self.brush_size, self.hardness, self.tool == "eraser")

    def leaveEvent(self, event) -> None:  # noqa: N802
        self._hover = False
        self.cursor_item.setVisible(False)
        super().leaveEvent(event)

    def keyPressEvent(self, event) -> None:  # noqa: N802
        if event.key() == Qt.Key.Key_Space and not event.isAutoRepeat():
            self._space = True
            self.viewport().setCursor(Qt.CursorShape.OpenHandCursor)
            self._update_cursor_item()
            return
        super().keyPressEvent(event)

    def keyReleaseEvent(self, event) -> None:  # noqa: N802
        if event.key() == Qt.Key.Key_Space and not event.isAutoRepeat():
            self._space = False
            self.viewport().unsetCursor()
            self._update_cursor_item()
            return
        super().keyReleaseEvent(event)

    # ------------------------------------------------------------------ outpainting by border drag
    def _edge_at(self, pos: QPointF) -> str | None:
        """The border under `pos`: a band reaching EDGE_GRAB_PX outside the image and 2 px inside it."""
        w, h = self.canvas_size
        zoom = max(self.zoom, 1e-6)
        out, inside = EDGE_GRAB_PX / zoom, 2.0 / zoom
        x, y = pos.x(), pos.y()
        if not (-out <= x <= w + out and -out <= y <= h + out):
            return None
        vertical = "t" if -out <= y <= inside else "b" if h - inside <= y <= h + out else ""
        horizontal = "l" if -out <= x <= inside else "r" if w - inside <= x <= w + out else ""
        return (vertical + horizontal) or None

    def _hover_cursor(self, pos: QPointF) -> None:
        edge = self._edge_at(pos) if self._pixels is not None else None
        shapes = {"l": Qt.CursorShape.SizeHorCursor, "r": Qt.CursorShape.SizeHorCursor,
                  "t": Qt.CursorShape.SizeVerCursor, "b": Qt.CursorShape.SizeVerCursor,
                  "tl": Qt.CursorShape.SizeFDiagCursor, "br": Qt.CursorShape.SizeFDiagCursor,
                  "tr": Qt.CursorShape.SizeBDiagCursor, "bl": Qt.CursorShape.SizeBDiagCursor}
        if edge:
            self.viewport().setCursor(shapes[edge])
        elif not self._space:
            self.viewport().setCursor(Qt.CursorShape.CrossCursor)

    def _edge_growth(self, pos: QPointF) -> tuple[int, int, int, int]:
        w, h = self.canvas_size
        left = max(0, round(-pos.x())) if "l" in self._edge else 0
        right = max(0, round(pos.x() - w)) if "r" in self._edge else 0
        top = max(0, round(-pos.y())) if "t" in self._edge else 0
        bottom = max(0, round(pos.y() - h)) if "b" in self._edge else 0
        return left, top, right, bottom

    def _update_frame(self, pos: QPointF) -> None:
        left, top, right, bottom = self._edge_growth(pos)
        w, h = self.canvas_size
        rect = QRectF(-left, -top, w + left + right, h + top + bottom)
        self.frame_item.setRect(rect)
        self.frame_item.setVisible(True)
        self.frame_label.setText(f"{int(rect.width())} × {int(rect.height())}")
        self.frame_label.setPos(rect.topLeft())
        self.extendDragged.emit(left, top, right, bottom)


def _cosmetic(color: QColor, width: float, style=Qt.PenStyle.SolidLine) -> QPen:
    pen = QPen(color, width, style)
    pen.setCosmetic(True)
    return pen

