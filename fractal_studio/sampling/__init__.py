"""The conditional fractal sampler: fills the unknown pixels of a canvas at the model's resolution.

The sampler itself (it needs torch) is imported on first use of its names, so that the torch-free
parts (the request, its vocabulary and checks) keep `fractal-studio --help` and the window quick.
"""

import importlib

from fractal_studio.sampling.events import Finished, Progress, SamplerEvent
from fractal_studio.sampling.request import SampleRequest

_LAZY = ("prepare_sampling", "sample", "sample_all")

__all__ = ["SampleRequest", "Progress", "Finished", "SamplerEvent", *_LAZY]


def __getattr__(name: str):
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module("fractal_studio.sampling.sampler"), name)
    globals()[name] = value  # later look-ups skip this function
    return value
