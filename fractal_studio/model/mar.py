"""MAR level: a bidirectional transformer over the patches of its image, some of them masked.

Token layout (it fixes which learned position each token gets, so it must match the weights):
[guiding pixel]? + the `num_conds` conditions in reverse order + one token per patch (raster order).
Its outputs for the patches become five conditions for the next level: the patch's own output
(middle) and those of its top, right, bottom and left neighbours (zeros beyond the border).
"""

from __future__ import annotations

import torch
import torch.nn as nn

from fractal_studio.model.layers import Block, init_weights, layer_norm
from fractal_studio.model.pixel_head import PixelHead

# The guiding-pixel head of every level is this size in the published models.
GUIDE_HEAD = dict(width=128, depth=3, heads=4, r_weight=5.0)


class MARLevel(nn.Module):
    kind = "mar"

    def __init__(self, seq_len: int, patch: int, cond_width: int, width: int, depth: int, heads: int,
                 num_conds: int, guiding_pixel: bool, dropout: float = 0.0):
        super().__init__()
        self.seq_len = seq_len
        self.patch = patch
        self.grid = int(round(seq_len ** 0.5))
        self.num_conds = num_conds
        self.guiding_pixel = guiding_pixel
        self.prefix = num_conds + int(guiding_pixel)

        self.mask_token = nn.Parameter(torch.zeros(1, 1, width))
        self.patch_emb = nn.Linear(3 * patch * patch, width)
        self.patch_emb_ln = layer_norm(width)
        self.cond_emb = nn.Linear(cond_width, width)
        if guiding_pixel:
            self.pix_proj = nn.Linear(3, width)
        self.pos_embed_learned = nn.Parameter(torch.zeros(1, seq_len + self.prefix, width))
        self.blocks = nn.ModuleList([Block(width, heads, dropout) for _ in range(depth)])
        self.norm = layer_norm(width)
        self.apply(init_weights)
        nn.init.normal_(self.mask_token, std=0.02)
        nn.init.normal_(self.pos_embed_learned, std=0.02)
        # Built after init so its own initialisation (codebooks) is kept.
        self.guide_head = PixelHead(cond_width, **GUIDE_HEAD) if guiding_pixel else None

    def predict(self, patches: torch.Tensor, mask: torch.Tensor, conds: list[torch.Tensor],
                guide: torch.Tensor | None = None) -> list[torch.Tensor]:
        """Next-level conditions [middle, top, right, bottom, left], each [N, seq_len, width].

        patches: [N, seq_len, 3*p*p] normalised pixels (values under the mask are ignored);
        mask: bool [N, seq_len], True = masked (to be predicted); conds: `num_conds` tensors [N, C];
        guide: [N, 3] normalised guiding pixel (mean colour of the image at this level).
        """
        x = self.patch_emb(patches)
        x = torch.where(mask.unsqueeze(-1), self.mask_token.to(x.dtype), x)
        prefix = [self.cond_emb(cond).unsqueeze(1) for cond in reversed(conds[: self.num_conds])]
        if self.guiding_pixel:
            prefix.insert(0, self.pix_proj(guide).unsqueeze(1))
        x = torch.cat([*prefix, x], dim=1) + self.pos_embed_learned
        x = self.patch_emb_ln(x)
        for block in self.blocks:
            x = block(x)
        x = self.norm(x)
        return neighbour_conditions(x[:, self.prefix:], self.grid)


def neighbour_conditions(middle: torch.Tensor, grid: int) -> list[torch.Tensor]:
    """[middle, top, right, bottom, left]: each patch also gets its neighbours' outputs (0 past edges)."""
    n, length, width = middle.shape
    square = middle.reshape(n, grid, grid, width)
    padded = nn.functional.pad(square, (0, 0, 1, 1, 1, 1))  # one zero patch around the grid
    top = padded[:, :-2, 1:-1]
    right = padded[:, 1:-1, 2:]
    bottom = padded[:, 2:, 1:-1]
    left = padded[:, 1:-1, :-2]
    return [middle] + [side.reshape(n, length, width) for side in (top, right, bottom, left)]
