"""Fractal generative models (FractalAR / FractalMAR) in PyTorch. No Qt, no hard-coded device.

The names that need torch (the model, load_model, save_model) are imported on first use, so that the
torch-free parts (configurations, the bundled-model catalog) keep `fractal-studio --help` quick.
"""

import importlib

from fractal_studio.model.config import PRESETS, LevelConfig, ModelConfig, SamplingDefaults, preset

_LAZY = {"FractalModel": "fractal_studio.model.fractal", "load_model": "fractal_studio.model.weights",
         "save_model": "fractal_studio.model.weights"}

__all__ = ["FractalModel", "LevelConfig", "ModelConfig", "SamplingDefaults", "PRESETS", "preset",
           "load_model", "save_model"]


def __getattr__(name: str):
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(_LAZY[name]), name)
    globals()[name] = value  # later look-ups skip this function
    return value
