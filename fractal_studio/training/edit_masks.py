"""Training regions shaped like the edits people make: brush strokes, boxes, outpaint strips, frames.

The authors train MAR levels with a masking rate near 1 (a normal at 1.0, sigma 0.25): the model
mostly learns to generate a window from nothing. An edit keeps most of a window known and asks for
one contiguous region. `training_regions` draws, per image, a pixel map of what is unknown; the
model's objective (`FractalModel.loss(..., unknown=...)`) turns it into token masks at every level
exactly the way the sampler decides what to generate (a patch with any unknown pixel is predicted,
its known pixels are context one level down).

Style "paper" draws nothing (every pixel unknown, the authors' masks); "edit" an edit shape for
every image; "mix" an edit shape for half of them; "guided" an edit shape for every image, half of
them with guide pixels inside (see `guided_batch`: what a coarse-to-fine fill gives the finer
scales). Drawn with torch's global generator, so a resumed run draws the same regions as an
uninterrupted one.
"""

from __future__ import annotations

import math

import torch

from fractal_studio.model.config import TRAINED_MASKS

MASK_STYLES = TRAINED_MASKS
EDIT_SHARE_IN_MIX = 0.5
GUIDED_SHARE = 0.5  # of "guided" images, those whose hole holds guide pixels
GUIDE_STRIDE = 2  # a guide pixel every GUIDE_STRIDE pixels each way: one scale step of the fill

# Share of the window an edit shape covers (brush strokes, boxes), and the outpaint strip widths.
BRUSH_COVER = (0.03, 0.30)
BOX_SIDE = (0.15, 0.6)
STRIP_WIDTH = (0.06, 0.5)
FRAME_WIDTH = (0.04, 0.2)
SHAPES = ("brush", "box", "strip", "frame")


def training_regions(style: str, batch: int, size: int, device=None) -> torch.Tensor | None:
    """Unknown-pixel maps bool [batch, size, size] for one batch (True = to be generated), or None
    when every pixel is unknown for every image (style "paper")."""
    if style not in MASK_STYLES:
        raise ValueError(f"mask style must be one of {MASK_STYLES}, not {style!r}")
    if style == "paper":
        return None
    # "guided" draws edit shapes here; its guide pixels change the images too (guided_batch).
    regions = torch.stack([edit_region(size) for _ in range(batch)])
    if style == "mix":
        paper = torch.rand(batch) >= EDIT_SHARE_IN_MIX
        regions[paper] = True
    return regions.to(device) if device is not None else regions


def guided_batch(images: torch.Tensor, regions: torch.Tensor,
                 stride: int = GUIDE_STRIDE) -> tuple[torch.Tensor, torch.Tensor]:
    """Guide pixels for a share (GUIDED_SHARE) of a batch's holes: what the next finer scale of a
    coarse-to-fine fill knows (editing/engine.py). Inside such a hole every `stride`-th pixel each
    way (a random phase) is known, and holds not the photo's pixel but the coarser scale's view of
    it: the photo area-averaged over stride x stride blocks and scaled back up (bicubic). The
    model then learns to draw a scale's detail around its coarse layout; the hole's other pixels
    keep their true values, the only ones scored.

    images: uint8 [B, 3, H, W]; regions: bool [B, H, W] (True = unknown). Returns both, changed."""
    import torch.nn.functional as F

    batch, _, height, width = images.shape
    guided = torch.rand(batch) < GUIDED_SHARE
    if not guided.any() or height % stride or width % stride:
        return images, regions
    chosen = guided.nonzero().squeeze(1).to(images.device)
    coarse = F.avg_pool2d(images[chosen].float(), stride)
    blurred = F.interpolate(coarse, scale_factor=stride, mode="bicubic", align_corners=False)
    blurred = blurred.round().clamp(0, 255).to(images.dtype)
    phase = torch.randint(stride, (len(chosen), 2))
    lattice = torch.zeros(len(chosen), height, width, dtype=torch.bool)
    for k, (dy, dx) in enumerate(phase.tolist()):
        lattice[k, dy::stride, dx::stride] = True
    pins = lattice.to(regions.device) & regions[chosen]
    images, regions = images.clone(), regions.clone()
    images[chosen] = torch.where(pins.unsqueeze(1), blurred, images[chosen])
    regions[chosen] = regions[chosen] & ~pins
    return images, regions


def edit_region(size: int) -> torch.Tensor:
    """One edit-shaped unknown map bool [size, size] with at least one unknown and one known pixel."""
    shape = SHAPES[int(torch.randint(len(SHAPES), ()))]
    region = {"brush": brush_strokes, "box": box, "strip": strip, "frame": frame}[shape](size)
    if not region.any():  # (a stroke can be drawn entirely off the window only by bad luck)
        region[size // 2, size // 2] = True
    if region.all():
        region[0, 0] = False
    return region


def _uniform(low: float, high: float) -> float:
    return low + (high - low) * float(torch.rand(()))


def brush_strokes(size: int) -> torch.Tensor:
    """Thick polylines (round caps) until they cover a drawn share of the window."""
    target = _uniform(*BRUSH_COVER)
    ys, xs = torch.meshgrid(torch.arange(size) + 0.5, torch.arange(size) + 0.5, indexing="ij")
    pixels = torch.stack([xs, ys], dim=-1)  # [size, size, 2]
    region = torch.zeros(size, size, dtype=torch.bool)
    for _ in range(8):  # strokes; stop once the share is reached
        radius = size * _uniform(0.03, 0.09)
        point = torch.rand(2) * size
        for _ in range(int(torch.randint(1, 5, ()))):
            angle = _uniform(0, 2 * math.pi)
            length = size * _uniform(0.1, 0.35)
            end = (point + length * torch.tensor([math.cos(angle), math.sin(angle)])).clamp(0, size)
            region |= _segment_distance(pixels, point, end) <= radius
            point = end
        if region.float().mean() >= target:
            break
    return region


def _segment_distance(pixels: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    ab = b - a
    t = ((pixels - a) @ ab / ab.dot(ab).clamp(min=1e-9)).clamp(0, 1)
    closest = a + t.unsqueeze(-1) * ab
    return (pixels - closest).norm(dim=-1)


def box(size: int) -> torch.Tensor:
    """An axis-aligned rectangle somewhere in the window."""
    height = max(1, round(size * _uniform(*BOX_SIDE)))
    width = max(1, round(size * _uniform(*BOX_SIDE)))
    top = int(torch.randint(size - height + 1, ()))
    left = int(torch.randint(size - width + 1, ()))
    region = torch.zeros(size, size, dtype=torch.bool)
    region[top:top + height, left:left + width] = True
    return region


def strip(size: int) -> torch.Tensor:
    """An outpaint strip along one side (the new canvas beyond a dragged border)."""
    width = max(1, round(size * _uniform(*STRIP_WIDTH)))
    region = torch.zeros(size, size, dtype=torch.bool)
    side = int(torch.randint(4, ()))
    if side == 0:
        region[:width] = True
    elif side == 1:
        region[:, size - width:] = True
    elif side == 2:
        region[size - width:] = True
    else:
        region[:, :width] = True
    return region


def frame(size: int) -> torch.Tensor:
    """An uncrop frame: a border on every side, the photo shrunk into the middle."""
    width = max(1, round(size * _uniform(*FRAME_WIDTH)))
    region = torch.ones(size, size, dtype=torch.bool)
    region[width:size - width, width:size - width] = False
    return region
