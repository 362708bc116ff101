"""What `auto` precision means on each kind of CUDA GPU (capabilities monkeypatched: no GPU needed)."""

from __future__ import annotations

import pytest
import torch

from fractal_studio.devices import autocast_for, resolve_precision
from fractal_studio.errors import UserError

CUDA = torch.device("cuda")

# (compute capability, GPUs of it, what auto samples in, what auto trains in)
GPUS = [((9, 0), "H100", "bf16", "bf16"), ((8, 9), "RTX 4090, L4", "bf16", "bf16"),
        ((8, 6), "RTX 3090, A10", "bf16", "bf16"), ((8, 0), "A100", "bf16", "bf16"),
        ((7, 5), "T4, RTX 2080", "fp16", "fp32"), ((7, 0), "V100", "fp16", "fp32"),
        ((6, 1), "GTX 1080, P4", "fp32", "fp32"), ((6, 0), "P100", "fp32", "fp32"),
        ((5, 2), "GTX 980", "fp32", "fp32")]


@pytest.fixture
def gpu(monkeypatch):
    def set_capability(capability):
        asked = []

        def get_device_capability(device=None):
            asked.append(device)
            return capability

        monkeypatch.setattr(torch.cuda, "get_device_capability", get_device_capability)
        return asked

    return set_capability


@pytest.mark.parametrize(("capability", "names", "sampling", "training"), GPUS)
def test_auto_takes_bf16_only_where_the_gpu_computes_it_natively(gpu, capability, names, sampling, training):
    asked = gpu(capability)
    assert resolve_precision(CUDA, "auto") == sampling, names
    assert resolve_precision(CUDA, "auto", training=True) == training, names
    assert asked == [CUDA, CUDA]  # the device the run is on, not whichever is current


@pytest.mark.parametrize(("capability", "sampling", "training"),
                         [((8, 0), torch.bfloat16, torch.bfloat16), ((7, 5), torch.float16, None),
                          ((6, 1), None, None)])
def test_autocast_computes_in_the_chosen_format(gpu, monkeypatch, capability, sampling, training):
    gpu(capability)
    contexts = []
    monkeypatch.setattr(torch, "autocast", lambda **kwargs: contexts.append(kwargs))
    autocast_for(CUDA, "auto")
    autocast_for(CUDA, "auto", training=True)
    off = {"device_type": "cuda", "enabled": False}
    expected = [{"device_type": "cuda", "dtype": dtype} if dtype else off for dtype in (sampling, training)]
    assert contexts == expected


def test_a_precision_asked_for_is_kept_and_fp16_runs_on_cuda_only(gpu):
    asked = gpu((7, 5))
    assert resolve_precision(CUDA, "bf16") == "bf16"  # emulated on this GPU, but asked for
    assert resolve_precision(CUDA, "fp32") == "fp32" and resolve_precision(CUDA, "fp16") == "fp16"
    assert asked == []
    for device in ("cpu", "mps"):
        with pytest.raises(UserError, match="fp16 runs on CUDA GPUs only") as error:
            resolve_precision(torch.device(device), "fp16")
        assert "\n" not in str(error.value)
    assert resolve_precision(torch.device("mps"), "auto") == "fp32"
