"""The conditional fractal sampler: fills the unknown pixels of a canvas at the model's resolution."""

from fractal_studio.sampling.request import SampleRequest
from fractal_studio.sampling.events import Finished, Progress, SamplerEvent

__all__ = ["SampleRequest", "Progress", "Finished", "SamplerEvent"]
