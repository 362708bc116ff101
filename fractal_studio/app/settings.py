"""Persisted preferences (QSettings): generation parameters, recent files and classes, window state.

Tests pass their own `QSettings(path, IniFormat)`; the app's is `settings.ini` in the user's config
folder (fractal_studio.paths).
"""

from __future__ import annotations

from dataclasses import asdict, field, fields, make_dataclass, replace

from PySide6.QtCore import QSettings

from fractal_studio.editing.options import OPTIONS, EditOptions

APP = "Fractal Studio"  # the name the window and the About box show
MAX_RECENT = 10


# The panel's own representation of some options (text, 0 for automatic) and its own defaults.
APP_DEFAULTS = {"iterations": "", "margin": 0, "candidates": 2}


def _params_fields():
    """What the parameters panel shows: the EditOptions fields it offers (editing/options.py),
    None in a `from_model` one meaning "the model's default", then the window's own two."""
    defaults = {f.name: f.default for f in fields(EditOptions)}
    for name, option in OPTIONS.items():
        if option.app:
            yield name, object, field(default=APP_DEFAULTS.get(name, defaults[name]))
    yield "random_seed", bool, field(default=True)  # draw a new seed for every run
    yield "device", str, field(default="auto")


def _edit_options(self, class_id: int | None, seed: int) -> EditOptions:
    """The options of a run with these parameters (the panel's seed for it, the picked class),
    checked: a UserError for text such as "8,x" in the Iterations box or a value out of range."""
    from fractal_studio.sampling.validation import parse_iterations

    values = {name: getattr(self, name) for name, option in OPTIONS.items() if option.app}
    values["iterations"] = parse_iterations(self.iterations)
    values["margin"] = self.margin or None  # 0 = automatic
    values.update(class_id=class_id, seed=seed)
    names = {name: option.title or option.label for name, option in OPTIONS.items()}
    return EditOptions(**values).validate(names)


def _iterations_tuple(self) -> tuple[int, ...] | None:
    """None for an empty box (the model's defaults); a UserError for text such as "8,x" or "0"."""
    from fractal_studio.sampling.validation import parse_iterations

    return parse_iterations(self.iterations)


Params = make_dataclass("Params", list(_params_fields()), frozen=True,
                        namespace={"edit_options": _edit_options, "iterations_tuple": _iterations_tuple,
                                   "__module__": __name__})


def open_settings(path: str | None = None) -> QSettings:
    if path:
        return QSettings(str(path), QSettings.Format.IniFormat)
    from fractal_studio import paths

    return QSettings(str(paths.settings_file()), QSettings.Format.IniFormat)


class Store:
    """Typed access to the QSettings keys the app uses."""

    def __init__(self, settings: QSettings):
        self.q = settings

    # ------------------------------------------------------------------ parameters
    def load_params(self, group: str = "default") -> Params:
        values = {}
        for f in fields(Params):
            raw = self.q.value(f"params/{group}/{f.name}")
            if raw is None or raw == "":
                continue
            try:
                values[f.name] = _coerce(f.name, raw)
            except (TypeError, ValueError):
                continue
        return replace(Params(), **values)

    def save_params(self, params: Params, group: str = "default") -> None:
        for name, value in asdict(params).items():
            self.q.setValue(f"params/{group}/{name}", "" if value is None else value)
        self.q.sync()

    # ------------------------------------------------------------------ lists
    def recent(self, key: str) -> list[str]:
        value = self.q.value(key) or []
        if isinstance(value, str):
            value = [value]
        return [str(v) for v in value]

    def push_recent(self, key: str, item: str, limit: int = MAX_RECENT) -> list[str]:
        items = [item] + [v for v in self.recent(key) if v != item]
        self.q.setValue(key, items[:limit])
        return items[:limit]

    # ------------------------------------------------------------------ misc
    def get(self, key: str, default=None):
        value = self.q.value(key)
        return default if value is None else value

    def set(self, key: str, value) -> None:
        self.q.setValue(key, value)
        self.q.sync()


def _coerce(name: str, raw):
    """A persisted value (QSettings gives text in an ini file) as the field's type, by its option's kind."""
    if name == "iterations":
        return str(raw)  # the box's text
    kind = OPTIONS[name].kind if name in OPTIONS else {"random_seed": "bool"}.get(name)
    if kind == "float":
        return float(raw)
    if kind == "int":
        return int(raw)
    if kind == "bool":
        return raw if isinstance(raw, bool) else str(raw).lower() == "true"
    return str(raw)
