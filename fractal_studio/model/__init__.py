"""Fractal generative models (FractalAR / FractalMAR) in PyTorch. No Qt, no hard-coded device."""

from fractal_studio.model.config import PRESETS, LevelConfig, ModelConfig, SamplingDefaults, preset
from fractal_studio.model.fractal import FractalModel

__all__ = ["FractalModel", "LevelConfig", "ModelConfig", "SamplingDefaults", "PRESETS", "preset"]
