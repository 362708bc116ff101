"""The conditional fractal sampler: fills the unknown pixels of a canvas at the model's resolution."""

from fractal_studio.sampling.events import Finished, Progress, SamplerEvent
from fractal_studio.sampling.request import SampleRequest

__all__ = ["SampleRequest", "Progress", "Finished", "SamplerEvent"]
from fractal_studio.sampling.sampler import prepare_sampling, sample, sample_all  # noqa: E402

__all__ += ["prepare_sampling", "sample", "sample_all"]
