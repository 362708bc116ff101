"""The main window: menus, tool bar, canvas, side panel and status bar, wired to the EditSession.

The window renders the session (editing/session.py) and forwards what the user does to it; the
session tells the window what changed (`_session_changed`)."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QEvent, QLockFile, QObject, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QActionGroup, QKeySequence
from PySide6.QtWidgets import (
    QAbstractSpinBox,
    QDockWidget,
    QFormLayout,
    QInputDialog,
    QLabel,
    QMainWindow,
    QMessageBox,
    QProgressBar,
    QScrollArea,
    QSlider,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from fractal_studio import paths
from fractal_studio.app.about import AboutDialog, app_icon, crash_message, open_log_folder
from fractal_studio.app.about import facts as about_facts
from fractal_studio.app.autosave import Autosave
from fractal_studio.app.candidates import CandidateStrip
from fractal_studio.app.canvas import CanvasView
from fractal_studio.app.files import FilesMixin
from fractal_studio.app.generation import TIME_LEFT_TICK_MS, GenerationMixin
from fractal_studio.app.models import ModelMixin, ModelPanel
from fractal_studio.app.panels import ClassPicker, ParamsPanel, TaskPanel
from fractal_studio.app.pin_tool import PinMixin
from fractal_studio.app.settings import Store, open_settings
from fractal_studio.app.surprise_view import SurpriseMixin
from fractal_studio.app.uncertainty_view import UncertaintyMixin
from fractal_studio.app.worker import modal
from fractal_studio.editing.session import EditSession
from fractal_studio.errors import UserError
from fractal_studio.model.catalog import MODELS_DIR, bundled_models

AUTOSAVE_DELAY_MS = 2_000
COMPARE_KEYS = (Qt.Key.Key_Backslash, Qt.Key.Key_C)
MOUSE_AND_HELD_KEYS = (
    ("\\ or C (hold)", "Compare with the original (before the previewed candidate or the last apply)"),
    ("Wheel", "Zoom at the cursor"),
    ("Shift+Wheel", "Brush size"),
    ("Space (hold) or middle button", "Pan"),
    ("Alt+drag (Rectangle)", "Erase a rectangle from the mask"),
    ("Drag a canvas border", "Extend the canvas (outpaint)"),
)


class ShortcutsWin(QObject):
    """Lets the window's shortcuts (Ctrl+Z, B, E, [, ], \\ ...) work while a number field has the
    focus: a spin box would otherwise claim every key. Digits and editing keys stay the field's;
    Enter in a field hands the focus back to the canvas."""

    FIELD_KEYS = {Qt.Key.Key_Backspace, Qt.Key.Key_Delete, Qt.Key.Key_Left, Qt.Key.Key_Right, Qt.Key.Key_Up,
                  Qt.Key.Key_Down, Qt.Key.Key_Home, Qt.Key.Key_End, Qt.Key.Key_Minus, Qt.Key.Key_Period,
                  Qt.Key.Key_Comma, Qt.Key.Key_PageUp, Qt.Key.Key_PageDown}

    def __init__(self, canvas, parent=None):
        super().__init__(parent)
        self.canvas = canvas

    def eventFilter(self, watched, event) -> bool:  # noqa: N802 (Qt API)
        if not isinstance(watched, QAbstractSpinBox):
            return False
        if event.type() == QEvent.Type.ShortcutOverride:
            key, control = event.key(), bool(event.modifiers() & Qt.KeyboardModifier.ControlModifier)
            digit = Qt.Key.Key_0 <= key <= Qt.Key.Key_9
            return control or not (digit or key in self.FIELD_KEYS)  # True: the shortcut may fire
        if event.type() == QEvent.Type.KeyPress and event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter):
            QTimer.singleShot(0, self.canvas.setFocus)
        return False


class MainWindow(FilesMixin, GenerationMixin, ModelMixin, SurpriseMixin, UncertaintyMixin, PinMixin,
                 QMainWindow):
    """Mixins first, so their Qt event handlers (dragEnterEvent, dropEvent) override QMainWindow's."""

    crashReported = Signal(str)  # a crash report's path, from any thread (logs.AppLog's on_crash)

    def __init__(self, settings=None, data_dir: str | Path | None = None, models_dir: Path | None = None,
                 autosave: bool = True):
        super().__init__()
        self.store = Store(settings if settings is not None else open_settings())
        self.models_dir = Path(models_dir) if models_dir else MODELS_DIR
        data_dir = data_dir or paths.autosave_dir()
        self.instance_lock = None  # held while this window autosaves into data_dir
        self.autosave = self._claim_autosave(Path(data_dir)) if autosave else None
        self.generation = self.model_loading = self.converting = None  # asyncio tasks
        self.published_dialog = None  # Model › Get published models…, made when first shown
        self.stream = None  # the running generation's worker.Stream
        self.preview_index = -1
        self.comparing = None  # the area showing the image before the last apply, while \\ is held
        self.result_rect = None  # where the current run's candidates may differ from the document
        self.stream_events = 0
        self.time_left = None  # the running generation's progress line (generation.TimeLeft)
        self.runs_finished = 0  # generations whose worker has stopped (tests wait on it)
        self.saved_revision = 0
        self.last_cancel_wait = 0.0
        self.session = EditSession()
        self.session.listen(self._session_changed)
        self.setAcceptDrops(True)
        self.setWindowIcon(app_icon())
        self.crashReported.connect(self.show_crash, Qt.ConnectionType.QueuedConnection)
        self._build_widgets()
        self._build_actions()
        self._name_for_screen_readers()
        self._restore_brush()
        self.shortcuts_win = ShortcutsWin(self.canvas, self)
        for field in self.findChildren(QAbstractSpinBox):
            field.installEventFilter(self.shortcuts_win)
        self.refresh_models()
        self.refresh_recent()
        self.update_actions()
        self.resize(1400, 900)
        # Saved shortly after every change (debounced), so a crash loses at most the last moments.
        self.autosave_timer = QTimer(self)
        self.autosave_timer.setSingleShot(True)
        self.autosave_timer.setInterval(AUTOSAVE_DELAY_MS)
        self.autosave_timer.timeout.connect(self.autosave_tick)
        # Counts the shown time left down between progress events (a long step, or compositing
        # the candidates, sends none for seconds).
        self.time_left_timer = QTimer(self)
        self.time_left_timer.setInterval(TIME_LEFT_TICK_MS)
        self.time_left_timer.timeout.connect(self.show_time_left)
        self.status.showMessage("Open an image (Ctrl+O), paste one (Ctrl+V) or drop a file; "
                                "File ▸ New canvas generates from scratch.")
        if autosave and self.autosave is None:
            self.status.showMessage("Another Fractal Studio window is running: this one does not autosave.")

    def _claim_autosave(self, folder: Path) -> Autosave | None:
        """The autosave folder, unless another running copy of the app holds it (then None: two
        copies must not restore or overwrite each other's sessions). A crashed copy's lock is free."""
        folder.mkdir(parents=True, exist_ok=True)
        lock = QLockFile(str(folder / "instance.lock"))
        lock.setStaleLockTime(0)  # stale only when its process is gone, however old
        if not lock.tryLock(0):
            return None
        self.instance_lock = lock
        return Autosave(folder)

    # ------------------------------------------------------------------ construction
    def _build_widgets(self) -> None:
        self.canvas = CanvasView(self)
        self.canvas.maskStroked.connect(self._stroked)
        self.canvas.extendRequested.connect(self.extend_canvas)
        self.canvas.zoomChanged.connect(lambda z: self.zoom_label.setText(f"Zoom: {z * 100:.0f}%"))
        self.canvas.brushChanged.connect(self._brush_changed)
        self.canvas.pinClicked.connect(self._pin_clicked)
        self.setCentralWidget(self.canvas)
        self.model_panel = ModelPanel()
        self.model_panel.modelRequested.connect(self.load_model_path)
        self.model_panel.open_button.clicked.connect(self.open_model_dialog)
        self.class_picker = ClassPicker()
        self.class_picker.set_classes([], conditional=False)
        self.task_panel = TaskPanel()
        self.task_panel.extendRequested.connect(self.extend_canvas)
        self.canvas.extendDragged.connect(self.task_panel.show_drag)
        self.task_panel.uncropRequested.connect(self.uncrop)
        self.params_panel = ParamsPanel()
        self.params_panel.set_params(self.store.load_params())
        self.params_panel.changed.connect(self._params_changed)
        self.candidate_strip = CandidateStrip()
        self.candidate_strip.previewRequested.connect(self.preview_candidate)
        self.candidate_strip.applyRequested.connect(self.apply_candidate)
        self.candidate_strip.compareToggled.connect(self.compare)
        self.candidate_strip.changedToggled.connect(self.show_changed)
        self.candidate_strip.varyRequested.connect(self.vary_detail)
        self.candidate_strip.rerollRequested.connect(self.reroll_unsure)
        self.candidate_strip.discard.clicked.connect(self.discard_candidates)
        side = QWidget()
        column = QVBoxLayout(side)
        for panel in (self.model_panel, self.class_picker, self.params_panel, self.task_panel):
            column.addWidget(panel)
        column.addStretch(1)
        scroll = self.side_scroll = QScrollArea()
        scroll.setWidget(side)
        scroll.setWidgetResizable(True)
        scroll.setMinimumWidth(380)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setCorner(Qt.Corner.BottomRightCorner, Qt.DockWidgetArea.RightDockWidgetArea)
        dock = QDockWidget("Panel", self)
        dock.setObjectName("side-panel")
        dock.setWidget(scroll)
        dock.setFeatures(QDockWidget.DockWidgetFeature.DockWidgetMovable)
        dock.setTitleBarWidget(QWidget())
        self.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, dock)
        strip = QDockWidget("Candidates", self)
        strip.setObjectName("candidates")
        strip.setWidget(self.candidate_strip)
        strip.setFeatures(QDockWidget.DockWidgetFeature.DockWidgetMovable)
        strip.setTitleBarWidget(QWidget())
        self.addDockWidget(Qt.DockWidgetArea.BottomDockWidgetArea, strip)
        self.status = self.statusBar()
        self.device_label = QLabel("Device: –")
        self.model_label = QLabel("Model: none")
        self.progress_label = QLabel("")
        self.progress = QProgressBar()
        self.progress.setRange(0, 1000)
        self.progress.setMaximumWidth(220)
        self.progress.setVisible(False)
        self.last_run_label = QLabel("")
        self.zoom_label = QLabel("Zoom: 100%")
        for w in (self.progress_label, self.progress, self.last_run_label, self.zoom_label, self.model_label,
                  self.device_label):
            self.status.addPermanentWidget(w)

    def _name_for_screen_readers(self) -> None:
        """Accessible names: the main widgets by role, each form field by its label."""
        for widget, name in ((self.canvas, "Image canvas"), (self.candidate_strip.list, "Candidates"),
                             (self.class_picker.search, "Search classes"), (self.progress, "Progress"),
                             (self.model_panel.combo, "Model"), (self.size_box, "Brush size"),
                             (self.hardness_slider, "Brush hardness"), (self.params_panel.seed, "Seed")):
            widget.setAccessibleName(name)
        for form in self.findChildren(QFormLayout):
            for row in range(form.rowCount()):
                label = form.itemAt(row, QFormLayout.ItemRole.LabelRole)
                field = form.itemAt(row, QFormLayout.ItemRole.FieldRole)
                widget = field.widget() if field is not None else None
                if label is not None and label.widget() is not None and widget is not None:
                    widget.setAccessibleName(label.widget().text())
        for field in self.findChildren(QAbstractSpinBox):  # the rest: named by their tooltip
            if not field.accessibleName() and field.toolTip():
                field.setAccessibleName(field.toolTip().split(":")[0].split(" (")[0])

    def _action(self, menu, text: str, slot, shortcut=None, tip: str = "") -> QAction:
        action = QAction(text, self)
        if shortcut is not None:
            action.setShortcut(QKeySequence(shortcut))
        action.setToolTip(f"{tip or text} ({action.shortcut().toString()})" if shortcut else (tip or text))
        action.setStatusTip(tip or text)
        action.triggered.connect(lambda _=False: slot())
        if menu is not None:
            menu.addAction(action)
        self.addAction(action)
        return action

    def _build_actions(self) -> None:
        bar = self.menuBar()
        file = bar.addMenu("&File")
        self.open_action = self._action(file, "&Open image…", self.open_dialog, QKeySequence.StandardKey.Open)
        self.recent_menu = file.addMenu("Open &recent")
        self._action(file, "&New canvas (model resolution)", self.new_canvas, "Ctrl+N")
        self._action(file, "&Paste image", self.paste, QKeySequence.StandardKey.Paste)
        file.addSeparator()
        self.export_action = self._action(file, "&Export PNG…", self.export_dialog, "Ctrl+E",
                                          "Export a PNG with the generation parameters in its metadata")
        self.copy_action = self._action(file, "&Copy result", self.copy_result, "Ctrl+Shift+C")
        file.addSeparator()
        self._action(file, "&Quit", self.close, QKeySequence.StandardKey.Quit)
        edit = bar.addMenu("&Edit")
        self.undo_action = self._action(edit, "&Undo", self.undo, "Ctrl+Z")
        self.redo_action = self._action(edit, "&Redo", self.redo, "Ctrl+Shift+Z")
        self.redo_action.setShortcuts([QKeySequence("Ctrl+Shift+Z"), QKeySequence("Ctrl+Y")])
        mask = bar.addMenu("&Mask")
        tools = QActionGroup(self)
        self.tool_actions = {}
        for tool, key, tip in (("brush", "B", "Paint the area to generate"),
                               ("eraser", "E", "Erase the mask"),
                               ("rect", "R", "Drag a rectangle to mask (Alt erases)"),
                               ("pin", "P", "Pin colour dots inside the mask: the fill keeps them "
                                            "exactly (Alt+click removes; Ctrl+click: the colour under it)"),
                               ("pan", "H", "Pan the view (or hold Space, or the middle button)")):
            action = self._action(mask, tool.capitalize(), lambda t=tool: self.set_tool(t), key, tip)
            action.setCheckable(True)
            tools.addAction(action)
            self.tool_actions[tool] = action
        self.tool_actions["brush"].setChecked(True)
        mask.addSeparator()
        self._action(mask, "Smaller brush", lambda: self.canvas.set_brush(self.canvas.brush_size / 1.25), "[")
        self._action(mask, "Larger brush", lambda: self.canvas.set_brush(self.canvas.brush_size * 1.25), "]")
        self._action(mask, "&Clear mask", self.clear_mask, "Ctrl+Shift+A")
        self._action(mask, "&Invert mask", self.invert_mask, "Ctrl+I")
        self._action(mask, "Clear &pins", self.clear_pins, tip="Take every pin away (undoable)")
        self._action(mask, "&Grow mask…", lambda: self.grow_mask(None, +1))
        self._action(mask, "&Shrink mask…", lambda: self.grow_mask(None, -1))
        self._action(mask, "&Feather…", self.feather_dialog, tip="Blend width at the mask border")
        self._action(mask, "Select &surprising regions…", self.select_surprising,
                     tip="Mask the pixels the model finds surprising (dust, blemishes, pasted patches)")
        view = bar.addMenu("&View")
        self._action(view, "&Fit", self.canvas.fit, "F")
        self._action(view, "&100%", self.canvas.actual_size, "1")
        self._action(view, "Zoom &in", lambda: self.canvas.zoom_by(1.25), QKeySequence.StandardKey.ZoomIn)
        self._action(view, "Zoom &out", lambda: self.canvas.zoom_by(0.8), QKeySequence.StandardKey.ZoomOut)
        view.addSeparator()
        self.surprise_action = self._action(
            view, "&Surprise map", lambda: self.show_surprise_map(self.surprise_action.isChecked()),
            tip="Heat overlay: how many bits the model spends on each pixel")
        self.surprise_action.setCheckable(True)
        self.uncertainty_action = self._action(
            view, "&Uncertainty", lambda: self.show_uncertainty(self.uncertainty_action.isChecked()),
            tip="Heat overlay on the previewed candidate: how unsure the model was of each pixel it drew")
        self.uncertainty_action.setCheckable(True)
        model = bar.addMenu("M&odel")
        self._action(model, "&Open model file…", self.open_model_dialog)
        self._action(model, "&Get published models…", self.show_published_models,
                     tip="Download one of the paper's five ImageNet models and install it")
        self._action(model, "&Convert published checkpoint…", self.convert_dialog)
        self.bundled_menu = model.addMenu("&Bundled models")
        self.bundled_menu.aboutToShow.connect(self._fill_bundled_menu)
        run = bar.addMenu("&Generate")
        self.generate_action = self._action(run, "&Generate", self.generate, "Ctrl+Return",
                                            "Generate the masked area (Ctrl+Enter)")
        self.generate_action.setShortcuts([QKeySequence("Ctrl+Return"), QKeySequence("Ctrl+Enter")])
        self.cancel_action = self._action(run, "&Cancel", self.cancel_generation, "Esc", "Stop the run")
        self.reroll_action = self._action(run, "&Re-roll unsure parts", self.reroll_unsure,
                                          tip="Draw the previewed candidate's least sure patches again")
        help_menu = bar.addMenu("&Help")
        self._action(help_menu, "&Keyboard shortcuts", self.show_shortcuts, "F1")
        self._action(help_menu, "Open &log folder", self.open_log_folder,
                     tip="The app's log and crash reports (to attach to a bug report)")
        help_menu.addSeparator()
        self.about_action = self._action(help_menu, "&About Fractal Studio", self.show_about)
        self.about_action.setMenuRole(QAction.MenuRole.AboutRole)
        toolbar = self.addToolBar("Tools")
        toolbar.setObjectName("tools")
        toolbar.addActions([self.open_action, self.export_action])
        toolbar.addSeparator()
        toolbar.addActions([self.tool_actions[t] for t in ("brush", "eraser", "rect", "pin", "pan")])
        toolbar.addWidget(self._build_pin_button())
        toolbar.addSeparator()
        toolbar.addWidget(QLabel(" Size "))
        self.size_box = QSpinBox()
        self.size_box.setRange(1, 2000)
        self.size_box.setValue(int(self.canvas.brush_size))
        self.size_box.setToolTip("Brush size in image pixels ([ and ], or Shift+wheel)")
        self.size_box.valueChanged.connect(lambda v: self.canvas.set_brush(size=v))
        toolbar.addWidget(self.size_box)
        toolbar.addWidget(QLabel(" Hardness "))
        self.hardness_slider = QSlider(Qt.Orientation.Horizontal)
        self.hardness_slider.setRange(0, 100)
        self.hardness_slider.setValue(int(self.canvas.hardness * 100))
        self.hardness_slider.setMaximumWidth(100)
        self.hardness_slider.setToolTip("Brush hardness: soft brushes fade out (the mask is cut at 50%)")
        self.hardness_slider.valueChanged.connect(lambda v: self.canvas.set_brush(hardness=v / 100))
        toolbar.addWidget(self.hardness_slider)
        toolbar.addSeparator()
        toolbar.addActions([self.undo_action, self.redo_action])
        toolbar.addSeparator()
        toolbar.addActions([self.generate_action, self.cancel_action])

    def _fill_bundled_menu(self) -> None:
        self.bundled_menu.clear()
        models = bundled_models(self.models_dir)
        for model in models:
            action = self.bundled_menu.addAction(model.name)
            action.triggered.connect(lambda _=False, p=str(model.path): self.load_model_path(p))
        if not models:
            self.bundled_menu.addAction(f"(none in {self.models_dir})").setEnabled(False)

    # ------------------------------------------------------------------ state → widgets
    def update_actions(self) -> None:
        has_doc = self.session.document is not None
        running = self.session.running
        self.generate_action.setEnabled(not running and self.model is not None)
        self.cancel_action.setEnabled(self.session.running)
        self.export_action.setEnabled(has_doc)
        self.copy_action.setEnabled(has_doc)
        history = self.session.history
        for action, verb, text in ((self.undo_action, "Undo", history.undo_text),
                                   (self.redo_action, "Redo", history.redo_text)):
            action.setEnabled(text is not None and not running)
            action.setText(f"&{verb} {text}" if text else f"&{verb}")
        rerolled = self.session.run is not None and self.session.run.rerolled_from is not None
        if rerolled and not running:  # undo takes the re-rolled candidate away first
            self.undo_action.setEnabled(True)
            self.undo_action.setText("&Undo re-roll")
        self.reroll_action.setEnabled(not running and bool(self.session.candidates))

    def _session_changed(self, kind: str, rect) -> None:
        doc = self.session.document
        if kind == "model":  # the document is as it was: only what can run now changes
            self.update_actions()
            return
        if kind != "run" and self.autosave is not None:
            self.autosave_timer.start()  # (re)starts the countdown
        if kind == "run":
            self._candidates_changed(rect)
        elif doc is None:
            return
        elif kind == "pins":
            self.show_pins(rect)
        elif kind == "mask":
            self.canvas.reload_mask(doc.coverage, rect)
            self.show_pins(rect)  # only the pins inside the mask count, and show
        elif kind == "pixels":
            self.canvas.update_document(doc.image, doc.coverage, self.session.empty, rect)
            self.show_pins()
        else:
            self.canvas.set_document(doc.image, doc.coverage, self.session.empty)
            self.show_pins()
            w, h = doc.size
            name = Path(doc.path).name if doc.path else "untitled"
            self.setWindowTitle(f"{name} ({w}×{h}) — Fractal Studio")
        self.update_actions()

    def undo(self) -> None:
        if self._idle():
            rerolled = self.session.run is not None and self.session.run.rerolled_from is not None
            self.session.undo()
            if rerolled:
                self.show_rerolled_from()

    def redo(self) -> None:
        if self._idle():
            self.session.redo()

    def _brush_changed(self, size: float, hardness: float) -> None:
        self.size_box.blockSignals(True)
        self.size_box.setValue(int(round(size)))
        self.size_box.blockSignals(False)
        self.hardness_slider.blockSignals(True)
        self.hardness_slider.setValue(int(round(hardness * 100)))
        self.hardness_slider.blockSignals(False)
        self.store.q.setValue("brush/size", float(size))  # kept for the next start (synced on quit)
        self.store.q.setValue("brush/hardness", float(hardness))

    def _restore_brush(self) -> None:
        try:
            size = float(self.store.get("brush/size", self.canvas.brush_size))
            hardness = float(self.store.get("brush/hardness", self.canvas.hardness))
        except (TypeError, ValueError):  # a hand-edited settings file: keep the defaults
            return
        self.canvas.set_brush(size=size, hardness=hardness)

    def _params_changed(self, params) -> None:
        group = self.model.config.name if self.model is not None else "default"
        self.store.save_params(params, group)

    # ------------------------------------------------------------------ intents
    def set_tool(self, tool: str) -> None:
        self.canvas.set_tool(tool)
        self.tool_actions[tool].setChecked(True)

    def _stroked(self, rect, text: str = "Brush stroke") -> None:
        """A stroke or rectangle ended on the canvas: its coverage becomes the session's (undoable).
        Any coverage is generated; soft values are the blend weights of the generated pixels."""
        if self.session.document is None:
            return
        if not self._idle():
            self.canvas.reload_mask(self.session.doc.coverage, rect)  # the stroke does not count
            return
        self.session.paint(rect, self.canvas.layer.coverage[rect.slices].copy(), text)

    def _mask_op(self, operation) -> None:
        if self.session.document is not None and self._idle():
            operation()

    def clear_mask(self) -> None:
        self._mask_op(self.session.clear_mask)

    def invert_mask(self) -> None:
        self._mask_op(self.session.invert_mask)

    def grow_mask(self, pixels: int | None, sign: int = 1) -> None:
        if pixels is None:
            title = "Grow mask" if sign > 0 else "Shrink mask"
            pixels, ok = QInputDialog.getInt(self, title, "Pixels:", 8, 1, 500)
            if not ok:
                return
            pixels *= sign
        self._mask_op(lambda: self.session.grow_mask(pixels))

    def feather_dialog(self) -> None:
        box = self.params_panel.feather
        value, ok = QInputDialog.getInt(self, "Feather", "Blend width at the mask border (pixels):",
                                        box.value(), box.minimum(), box.maximum())
        if ok:
            self.params_panel.feather.setValue(value)

    def extend_canvas(self, left: int, top: int, right: int, bottom: int) -> None:
        if self.session.document is None or not (left or top or right or bottom) or not self._idle():
            return
        try:
            self.session.extend(left, top, right, bottom)
        except UserError as error:
            self.show_error("Cannot extend the canvas", str(error))
            return
        w, h = self.session.doc.size
        self.status.showMessage(f"Canvas is now {w}×{h}; the new area (checkerboard) will be generated", 6000)

    def uncrop(self, scale: float) -> None:
        """One click: shrink the image into the middle of the canvas and generate the new border."""
        if self.session.document is None or not self._idle():
            return
        try:
            self.session.uncrop(scale)
        except UserError as error:
            self.show_error("Cannot uncrop", str(error))
            return
        if self.model is not None:
            self.generate()

    def _idle(self) -> bool:
        if self.session.running:
            self.status.showMessage("Wait for the run to finish or cancel it (Esc)", 3000)
            return False
        return True

    def shortcuts_text(self) -> str:
        """Every shortcut of the window's actions, then the mouse and held keys, one per line."""
        lines = []
        for action in self.actions():
            keys = ", ".join(k.toString(QKeySequence.SequenceFormat.NativeText) for k in action.shortcuts())
            if keys:
                lines.append(f"{keys}\t{action.text().replace('&', '')}")
        lines += [f"{keys}\t{what}" for keys, what in MOUSE_AND_HELD_KEYS]
        return "\n".join(lines)

    def show_shortcuts(self) -> None:
        QMessageBox.information(self, "Keyboard shortcuts", self.shortcuts_text())

    def show_about(self) -> AboutDialog:
        device = self.device_label.text().removeprefix("Device: ")
        dialog = AboutDialog(about_facts(self.session.loaded, device), self)
        modal(dialog.exec)
        return dialog

    def open_log_folder(self) -> None:
        if not open_log_folder():
            self.status.showMessage(f"Could not open the log folder {paths.log_dir()}", 6000)

    def show_crash(self, report: str) -> None:
        """An uncaught error was reported (logs.AppLog, in any thread): said once it is safe to."""
        self.status.showMessage(f"Internal error: report written to {report}")
        modal(lambda: QMessageBox.warning(self, "Internal error", crash_message(Path(report))))

    def show_error(self, title: str, message: str) -> None:
        modal(lambda: QMessageBox.warning(self, title, message))

    # ------------------------------------------------------------------ events
    def keyPressEvent(self, event) -> None:  # noqa: N802
        """Hold backslash to compare with the original (keys the canvas does not use arrive here)."""
        if event.key() in COMPARE_KEYS and not event.isAutoRepeat():
            self.compare(True)
            return
        super().keyPressEvent(event)

    def keyReleaseEvent(self, event) -> None:  # noqa: N802
        if event.key() in COMPARE_KEYS and not event.isAutoRepeat():
            self.compare(False)
            return
        super().keyReleaseEvent(event)

    def closeEvent(self, event) -> None:  # noqa: N802
        if not self.may_discard_changes():
            event.ignore()
            return
        self.close_running_job()
        for task in (self.model_loading, self.converting, self.surprise_task):  # no window to go to
            if task is not None and not task.done():
                task.cancel()
        if self.published_dialog is not None:  # a download stops; what it has is kept for resuming
            self.published_dialog.stop()
        self.autosave_timer.stop()
        if self.autosave is not None:
            self.autosave_tick(wait=True)
            self.autosave.mark_clean_exit()
        self.store.set("window/geometry", self.saveGeometry())
        self.store.set("window/state", self.saveState())
        if self.instance_lock is not None:
            self.instance_lock.unlock()
        super().closeEvent(event)

    def start(self, image: str | None = None, model: str | None = None) -> None:
        """What the app does once shown: restore geometry, offer a crashed session, load model and image."""
        geometry = self.store.get("window/geometry")
        if geometry is not None:
            self.restoreGeometry(geometry)
            self.restoreState(self.store.get("window/state"))
        if self.autosave is not None:
            self.offer_restore()
            self.autosave.mark_running()
        path = model or self.store.get("model/last")
        if not path or not Path(path).is_file():
            models = bundled_models(self.models_dir)
            path = str(models[0].path) if models else None
        if path:
            self.load_model_path(path)
        if image:
            self.open_image(image)
        self.canvas.setFocus()
