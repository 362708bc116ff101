"""The five checkpoints published with "Fractal Generative Models" (Li, Sun, Fan, He 2025): what each
is, where the authors host it and how big it is. Facts only, in code; no Qt, no torch.

Sources (github.com/LTH14/fractalgen at commit c7d0990): the links, FID and Inception Score are from
its README.md; the download sizes from util/download.py; the licence from its LICENSE. Parameter
counts are exact, summed from the official state-dict shapes recorded in
tests/fixtures/reference/official_state_dict_manifests.json (the README rounds them, and lists
432M for FractalAR where its state dict holds 442M).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

PAPER = 'Li, Sun, Fan, He: "Fractal Generative Models" (2025), arXiv:2502.17437'
AUTHORS_REPO = "https://github.com/LTH14/fractalgen"
LICENCE_NOTE = ("Published by the paper's authors with github.com/LTH14/fractalgen, under the MIT License "
                "(Copyright (c) 2025 Tianhong Li), which states no separate terms for the weights; they were "
                "trained on ImageNet, whose terms of access limit its images to non-commercial research and "
                "education: check whether that matters for your use.")
IMAGENET = "ImageNet-1k"

# The authors' sizes are their progress bars' totals in 1 MiB chunks (util/download.py), so they are
# rounded: each lies within 0.2% of the weights alone in float32 (parameters x 4 bytes), which shows
# the published files hold the model without its optimizer state. A download must match to this share.
SIZE_TOLERANCE = 0.005  # well under the 1.1% between the two closest sizes (FractalMAR-L, FractalAR)
MIB = 2**20


@dataclass(frozen=True)
class PublishedModel:
    name: str  # what `models get` and --model call it; the installed file is NAME.safetensors
    title: str
    purpose: str  # one sentence: what it is good for
    resolution: int  # square images of this side, in pixels
    class_num: int
    classes: str  # the label set
    download_bytes: int  # approximate, see SIZE_TOLERANCE
    parameters: int
    preset: str  # the configuration in model/config.py PRESETS
    url: str  # the authors' direct download link
    fid: float  # FID-50K on ImageNet at `resolution`, as the authors report it (lower is better)
    inception_score: float
    licence: str = LICENCE_NOTE

    def expects_size(self, size: int) -> bool:
        """Whether a file of `size` bytes can be this checkpoint (the catalogue size is rounded)."""
        return abs(size - self.download_bytes) <= SIZE_TOLERANCE * self.download_bytes


def _dropbox(path: str) -> str:
    # util/download.py asks for the `dl=0` (preview) form while posing as Wget, which Dropbox answers
    # with the file; `dl=1` is Dropbox's documented direct-download form for any client.
    return f"https://www.dropbox.com/scl/fi/{path}&dl=1"


PUBLISHED: dict[str, PublishedModel] = {model.name: model for model in (
    PublishedModel(
        "fractalar_in64", "FractalAR, 64×64",
        "The autoregressive variant at 64×64: slower and weaker than FractalMAR-64, for comparing the two.",
        64, 1000, IMAGENET, 1688 * MIB, 442_068_224, "fractalar_in64",
        _dropbox("n25tbij7aqkwo1ypqhz72/checkpoint-last.pth?rlkey=2czevgex3ocg2ae8zde3xpb3f&st=mj0subup"),
        fid=5.30, inception_score=56.8),
    PublishedModel(
        "fractalmar_in64", "FractalMAR, 64×64",
        "The quickest published model and the best at 64×64: try it first, for small fills and quick drafts.",
        64, 1000, IMAGENET, 1650 * MIB, 431_995_648, "fractalmar_in64",
        _dropbox("lh7fmv48pusujd6m4kcdn/checkpoint-last.pth?rlkey=huihey61ok32h28o3tbbq6ek9&st=fxtoawba"),
        fid=2.72, inception_score=87.9),
    PublishedModel(
        "fractalmar_base_in256", "FractalMAR-B, 256×256",
        "The smallest 256×256 model: the cheapest way to 256×256 images, at the lowest quality of the three.",
        256, 1000, IMAGENET, 712 * MIB, 186_300_224, "fractalmar_base_in256",
        _dropbox("zrdm7853ih4tcv98wmzhe/checkpoint-last.pth?rlkey=htq9yuzovet7d6ioa64s1xxd0&st=4c4d93vs"),
        fid=11.80, inception_score=274.3),
    PublishedModel(
        "fractalmar_large_in256", "FractalMAR-L, 256×256",
        "The middle 256×256 model: clearly better images than Base at a bit over twice its size.",
        256, 1000, IMAGENET, 1669 * MIB, 437_000_064, "fractalmar_large_in256",
        _dropbox("y1k05xx7ry8521ckxkqgt/checkpoint-last.pth?rlkey=wolq4krdq7z7eyjnaw5ndhq6k&st=vjeu5uzo"),
        fid=7.30, inception_score=334.9),
    PublishedModel(
        "fractalmar_huge_in256", "FractalMAR-H, 256×256",
        "The best 256×256 images of the paper, at the highest cost: the largest download, the slowest steps.",
        256, 1000, IMAGENET, 3243 * MIB, 849_586_240, "fractalmar_huge_in256",
        _dropbox("t2rru8xr6wm23yvxskpww/checkpoint-last.pth?rlkey=dn9ss9zw4zsnckf6bat9hss6h&st=y7w921zo"),
        fid=6.15, inception_score=348.9),
)}


def published_model(name_or_url: str) -> PublishedModel | None:
    """The catalogue entry with this name or this exact download link; None for anything else."""
    if name_or_url in PUBLISHED:
        return PUBLISHED[name_or_url]
    return next((model for model in PUBLISHED.values() if model.url == name_or_url), None)


def format_bytes(size: float) -> str:
    """A size as people read it (decimal units, as file managers and browsers show downloads)."""
    if size < 1000:
        return f"{size:.0f} bytes"
    exponent = min(int(math.log10(size)) // 3, 4)
    value = size / 1000**exponent
    return f"{value:.1f} {_UNITS[exponent]}" if value < 10 else f"{value:.0f} {_UNITS[exponent]}"


_UNITS = ("bytes", "kB", "MB", "GB", "TB")


def format_parameters(count: int) -> str:
    return f"{count / 1e6:.0f}M" if count >= 1e6 else f"{count:,}"
