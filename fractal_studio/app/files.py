"""Opening, pasting, exporting, copying and autosaving (MainWindow mixin)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PySide6.QtGui import QGuiApplication, QImage
from PySide6.QtWidgets import QFileDialog, QMessageBox

from fractal_studio.app.autosave import DamagedAutosave
from fractal_studio.app.settings import Params
from fractal_studio.app.worker import EXECUTOR
from fractal_studio.editing.history import history_from_arrays, history_to_arrays
from fractal_studio.errors import UserError

IMAGE_FILTER = "Images (*.png *.jpg *.jpeg *.webp *.bmp *.tif *.tiff *.gif);;All files (*)"


def rgb_from_qimage(image: QImage) -> np.ndarray:
    image = image.convertToFormat(QImage.Format.Format_RGB888)
    w, h, stride = image.width(), image.height(), image.bytesPerLine()
    data = np.frombuffer(image.constBits(), np.uint8, count=stride * h).reshape(h, stride)
    return data[:, : w * 3].reshape(h, w, 3).copy()


def qimage_from_rgb(pixels: np.ndarray) -> QImage:
    pixels = np.ascontiguousarray(pixels)
    h, w = pixels.shape[:2]
    return QImage(pixels.data, w, h, w * 3, QImage.Format.Format_RGB888).copy()


class FilesMixin:
    # ------------------------------------------------------------------ opening
    def open_dialog(self) -> None:
        start = self.store.get("files/last_folder", "")
        path, _ = QFileDialog.getOpenFileName(self, "Open image", start, IMAGE_FILTER)
        if path:
            self.open_image(path)

    def open_image(self, path: str) -> bool:
        from fractal_studio.editing.document import Document

        if not self._idle():
            return False
        try:
            doc = Document.open(path)
        except UserError as error:
            self.show_error("Could not open the image", str(error))
            return False
        except (OSError, ValueError) as error:
            self.show_error("Could not open the image", f"{path}: {error}")
            return False
        if not self.set_document(doc):
            return False
        self.store.set("files/last_folder", str(Path(path).parent))
        self.store.push_recent("recent/files", str(Path(path).resolve()))
        self.refresh_recent()
        notes = "; ".join(getattr(doc, "notes", ()) or ())
        self.status.showMessage(f"Opened {Path(path).name}" + (f" ({notes})" if notes else ""), 8000)
        return True

    def set_document(self, doc, blank=None, ask: bool = True) -> bool:
        """Makes `doc` the session's document: refused while a run is going, and when the user
        keeps unexported changes of the current one (ask=False: nothing to lose, e.g. a restore)."""
        if not self._idle() or (ask and not self.may_discard_changes()):
            return False
        self.session.set_document(doc, blank)
        return True

    def may_discard_changes(self) -> bool:
        """True when nothing unexported would be lost, or the user exported it or chose to discard
        it; False when they cancelled."""
        if not self.session.unsaved:
            return True
        buttons = QMessageBox.StandardButton
        answer = QMessageBox.question(
            self, "Unsaved changes", "The image has changes that were not exported. Export them first?",
            buttons.Save | buttons.Discard | buttons.Cancel, buttons.Save)
        if answer == buttons.Save:
            return self.export_dialog()
        return answer != buttons.Cancel

    def new_canvas(self) -> None:
        from fractal_studio.editing.document import Document

        size = self.model.config.resolution if self.model is not None else 256
        doc = Document(np.zeros((size, size, 3), np.uint8), mask=np.ones((size, size), bool))
        self.set_document(doc, blank=np.ones((size, size), bool))
        self.status.showMessage(f"New {size}×{size} canvas: press Ctrl+Enter to generate", 6000)

    def paste(self) -> None:
        image = QGuiApplication.clipboard().image()
        if image.isNull():
            urls = QGuiApplication.clipboard().mimeData().urls()
            if urls and urls[0].isLocalFile():
                self.open_image(urls[0].toLocalFile())
            else:
                self.show_error("Nothing to paste", "The clipboard holds no image.")
            return
        from fractal_studio.editing.document import Document

        self.set_document(Document(rgb_from_qimage(image)))
        self.status.showMessage("Pasted image from the clipboard", 4000)

    def refresh_recent(self) -> None:
        self.recent_menu.clear()
        files = self.store.recent("recent/files")
        for path in files:
            action = self.recent_menu.addAction(path)
            action.triggered.connect(lambda _=False, p=path: self.open_image(p))
        self.recent_menu.setEnabled(bool(files))

    def dragEnterEvent(self, event) -> None:  # noqa: N802
        if event.mimeData().hasUrls() or event.mimeData().hasImage():
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:  # noqa: N802
        data = event.mimeData()
        for url in data.urls():
            if url.isLocalFile():
                path = url.toLocalFile()
                if path.endswith(".safetensors"):
                    self.load_model_path(path)
                else:
                    self.open_image(path)
                event.acceptProposedAction()
                return
        if data.hasImage():
            from fractal_studio.editing.document import Document

            self.set_document(Document(rgb_from_qimage(QImage(data.imageData()))))
            event.acceptProposedAction()

    # ------------------------------------------------------------------ saving
    def shown_candidate(self) -> int | None:
        """The candidate previewed on the canvas, or None when the document itself is shown."""
        return self.preview_index if self.session.candidates and self.preview_index >= 0 else None

    def displayed_pixels(self) -> np.ndarray:
        return self.session.pixels(self.shown_candidate())

    def export_dialog(self) -> bool:
        """Asks where, then exports; False if the user cancelled or the export failed."""
        if self.session.document is None:
            return False
        doc_path = self.session.doc.path
        suggestion = (str(Path(doc_path).with_name(Path(doc_path).stem + "_edit.png")) if doc_path
                      else "edit.png")
        path, _ = QFileDialog.getSaveFileName(self, "Export PNG", suggestion, "PNG images (*.png)")
        return bool(path) and self.export_png(path)

    def export_png(self, path: str) -> bool:
        if not path.lower().endswith(".png"):
            path += ".png"
        try:
            self.session.export(path, self.shown_candidate())
        except UserError as error:
            self.show_error("Could not export", str(error))
            return False
        self.status.showMessage(f"Exported {path} (parameters stored in the PNG)", 6000)
        return True

    def copy_result(self) -> None:
        if self.session.document is not None:
            QGuiApplication.clipboard().setImage(qimage_from_rgb(self.displayed_pixels()))
            self.status.showMessage("Copied to the clipboard", 3000)

    # ------------------------------------------------------------------ autosave
    def session_info(self) -> dict:
        doc = self.session.doc
        return {"params": self.params_panel.params().__dict__, "model": self.model_path,
                "class_id": self.class_picker.current(), "path": str(doc.path) if doc.path else None,
                "origin": list(doc.origin) if doc.origin is not None else None}

    def autosave_tick(self, wait: bool = False) -> None:
        doc = self.session.document
        if doc is None or self.session.revision == self.saved_revision or self.autosave is None:
            return
        revision = self.session.revision
        empty = self.session.empty
        empty = None if empty is None else empty.copy()
        info = json.loads(json.dumps(self.session_info(), default=str))
        history, info["history"] = history_to_arrays(self.session.history)
        if doc.pins is not None:
            history["pins"] = doc.pins.copy()
        args = (doc.image.copy(), doc.mask.copy(), empty, info, history)
        future = EXECUTOR.submit(self.autosave.save, *args)
        self.saved_revision = revision
        if wait:
            future.result(timeout=60)

    def offer_restore(self) -> None:
        if self.autosave is None or not self.autosave.crashed:
            return
        answer = QMessageBox.question(self, "Restore session?",
                                      "Fractal Studio did not close cleanly last time. Restore the autosaved "
                                      "session (image, mask, canvas and parameters)?")
        if answer == QMessageBox.StandardButton.Yes:
            self.restore_session()
        else:
            self.autosave.discard()

    def restore_session(self) -> bool:
        from fractal_studio.editing.document import Document

        try:
            arrays, info = self.autosave.load()
        except DamagedAutosave as error:
            aside = self.autosave.set_aside()
            self.show_error("Could not restore", f"The autosaved session cannot be restored: {error}. "
                                                 f"It was moved to {aside}.")
            return False
        doc = Document(arrays["image"], mask=arrays["mask"], path=info.get("path"))
        if info.get("origin"):
            doc.origin = tuple(int(v) for v in info["origin"])
        if "pins" in arrays:  # sessions saved before pins have none
            doc.set_pins(arrays["pins"])
        self.set_document(doc, blank=arrays.get("empty", np.zeros(arrays["mask"].shape, bool)), ask=False)
        try:
            kept = self.session.restore_history(history_from_arrays(arrays, info.get("history", [])))
        except ValueError:
            kept = False
        notes = [] if kept or not info.get("history") else ["its undo history could not be restored"]
        params = info.get("params") or {}
        known = {k: v for k, v in params.items() if k in Params.__dataclass_fields__}
        try:
            self.params_panel.set_params(Params(**known))
        except (TypeError, ValueError):
            notes.append("the saved parameters were unreadable")
        if info.get("model") and Path(info["model"]).is_file() and info["model"] != self.model_path:
            self.load_model_path(info["model"])
        steps = len(self.session.history.done)
        undo = f" ({steps} step{'s' * (steps != 1)} to undo)" if steps else ""
        self.status.showMessage(f"Restored the autosaved session{undo}" + "".join(f"; {n}" for n in notes),
                                8000)
        return True
