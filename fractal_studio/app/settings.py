"""Persisted preferences (QSettings): generation parameters, recent files and classes, window state.

Tests pass their own `QSettings(path, IniFormat)`; the app uses the organisation/application names.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace

from PySide6.QtCore import QSettings

ORG = "FractalStudio"
APP = "Fractal Studio"
MAX_RECENT = 10


@dataclass(frozen=True)
class Params:
    """What the parameters panel shows. None in a model field means "the model's default"."""

    cfg: float | None = None
    cfg_schedule: str | None = None
    temperature: float | None = None
    spread: float | None = None
    iterations: str = ""  # "64,16" or "" for the model's default
    seed: int = 0
    random_seed: bool = True
    candidates: int = 2
    margin: int = 0  # 0 = automatic context margin
    feather: int = 0
    seamless: bool = True  # match the fill's colour to the photo at its border
    detail: bool = True  # coarse to fine: fill again at finer scales guided by the coarse fill
    detail_spread: float | None = None
    device: str = "auto"
    precision: str = "auto"  # auto (measured per machine and model), fp32 or bf16

    def iterations_tuple(self) -> tuple[int, ...] | None:
        """None for an empty box (the model's defaults); a UserError for text such as "8,x" or "0"."""
        from fractal_studio.sampling.validation import parse_iterations

        return parse_iterations(self.iterations)


def open_settings(path: str | None = None) -> QSettings:
    if path:
        return QSettings(str(path), QSettings.Format.IniFormat)
    return QSettings(QSettings.Format.IniFormat, QSettings.Scope.UserScope, ORG, APP)


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
    if name in ("cfg", "temperature", "spread", "detail_spread"):
        return float(raw)
    if name in ("seed", "candidates", "margin", "feather"):
        return int(raw)
    if name in ("random_seed", "seamless", "detail"):
        return raw if isinstance(raw, bool) else str(raw).lower() == "true"
    return str(raw)
