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


PRECISIONS = ("auto", "fp32", "bf16")


def resolve_precision(device: torch.device, precision: str = "auto") -> str:
    """"auto" is bf16 on CUDA and fp32 elsewhere; sampling measures what pays on a CPU instead
    (sampling.precision)."""
    if precision not in PRECISIONS:
        raise UserError(f"unknown precision {precision!r}; choose one of {', '.join(PRECISIONS)}")
    if precision != "auto":
        return precision
    return "bf16" if device.type == "cuda" else "fp32"


def autocast_for(device: torch.device, precision: str = "auto"):
    """bf16 autocast (weights stay fp32; the pixel logits are computed in fp32) or nothing."""
    import torch

    if resolve_precision(device, precision) == "bf16":
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    return torch.autocast(device_type=device.type, enabled=False)
