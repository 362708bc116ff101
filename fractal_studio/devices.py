"""Choosing the compute device: CUDA if present, else Apple MPS, else CPU. No device is hard-coded."""

from __future__ import annotations

from typing import TYPE_CHECKING

from fractal_studio.errors import UserError

if TYPE_CHECKING:  # torch is imported where it is used: the app shows its window before loading it
    import torch

DEVICE_CHOICES = ("auto", "cpu", "cuda", "mps")


def mps_available() -> bool:
    import torch

    backend = getattr(torch.backends, "mps", None)
    return bool(backend and backend.is_available())


def pick_device(choice: str = "auto") -> torch.device:
    """The device for `choice` (auto|cpu|cuda|mps), with a clear message when it is not available."""
    import torch

    choice = (choice or "auto").lower()
    if choice not in DEVICE_CHOICES:
        raise UserError(f"unknown device {choice!r}; choose one of {', '.join(DEVICE_CHOICES)}")
    if choice == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if mps_available():
            return torch.device("mps")
        return torch.device("cpu")
    if choice == "cuda" and not torch.cuda.is_available():
        raise UserError("CUDA was requested but no CUDA GPU is available to PyTorch; use --device cpu")
    if choice == "mps" and not mps_available():
        raise UserError("MPS was requested but this machine has no Apple GPU; use --device cpu")
    return torch.device(choice)


PRECISIONS = ("auto", "fp32", "bf16", "fp16")
NATIVE_BF16 = (8, 0)  # CUDA compute capability with bf16 arithmetic (Ampere); before it, bf16 is emulated
FP16_TENSOR_CORES = (7, 0)  # Volta and Turing: fp16 matrix products on tensor cores, no native bf16


def cuda_capability(device: torch.device) -> tuple[int, int]:
    import torch

    major, minor = torch.cuda.get_device_capability(device)
    return int(major), int(minor)


def resolve_precision(device: torch.device, precision: str = "auto", training: bool = False) -> str:
    """What `precision` means on `device`. "auto" on CUDA: bf16 where the GPU computes it natively
    (compute capability 8.0 and later), else fp16 where it has fp16 tensor cores (7.x), else fp32;
    training takes fp32 instead of fp16 (fp16 gradients would need loss scaling). Elsewhere fp32:
    sampling measures what pays on a CPU instead (sampling.precision). fp16 runs on CUDA only."""
    if precision not in PRECISIONS:
        raise UserError(f"unknown precision {precision!r}; choose one of {', '.join(PRECISIONS)}")
    if precision == "fp16" and device.type != "cuda":
        raise UserError(f"fp16 runs on CUDA GPUs only; on {device.type.upper()} choose auto, fp32 or bf16")
    if precision != "auto":
        return precision
    if device.type != "cuda":
        return "fp32"
    capability = cuda_capability(device)
    if capability >= NATIVE_BF16:
        return "bf16"
    return "fp16" if capability >= FP16_TENSOR_CORES and not training else "fp32"


def autocast_for(device: torch.device, precision: str = "auto", training: bool = False):
    """bf16 or fp16 autocast (weights stay fp32; the pixel logits are computed in fp32) or nothing."""
    import torch

    chosen = resolve_precision(device, precision, training)
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(chosen)
    if dtype is not None:
        return torch.autocast(device_type=device.type, dtype=dtype)
    return torch.autocast(device_type=device.type, enabled=False)
