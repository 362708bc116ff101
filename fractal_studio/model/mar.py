"""MAR level: a bidirectional transformer over the patches of its image, some of them masked.

Token layout (it fixes which learned position each token gets, so it must match the weights):
[guiding pixel]? + the `num_conds` conditions in reverse order + one token per patch (raster order).
Its outputs for the patches become five conditions for the next level: the patch's own output
(middle) and those of its top, right, bottom and left neighbours (zeros beyond the border).
The level below may read fewer (an AR level or the pixel head reads the middle one only): then
sampling computes no more (`conditions_below`).
"""

from __future__ import annotations

import torch
import torch.nn as nn

from fractal_studio.model.layers import Block, init_weights, layer_norm
from fractal_studio.model.pixel_head import PixelHead

# The guiding-pixel head of every level is this size in the published models.
GUIDE_HEAD = dict(width=128, depth=3, heads=4, r_weight=5.0)
NEIGHBOUR_CONDITIONS = 5  # middle, top, right, bottom, left


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
        # How many of the five conditions per patch the level below reads (the first ones): set
        # by the model that stacks the levels (FractalModel); all five for a level on its own.
        self.conditions_below = NEIGHBOUR_CONDITIONS

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
        return self.predict_all(patches, mask, self.condition_tokens(conds, guide))

    def predict_all(self, patches: torch.Tensor, mask: torch.Tensor,
                    cond_tokens: torch.Tensor) -> list[torch.Tensor]:
        """`predict` from the `condition_tokens` instead of the conditions."""
        x = self.norm(self.run_blocks(self.embed(patches, mask, cond_tokens)))
        return neighbour_conditions(x[:, self.prefix:], self.grid)

    def predict_patches(self, patches: torch.Tensor, mask: torch.Tensor, cond_tokens: torch.Tensor,
                        rows: torch.Tensor, cols: torch.Tensor) -> list[torch.Tensor]:
        """What `predict` gives for the patches (rows, cols) only, as far as the level below
        reads it: the first `conditions_below` of its five tensors, each [n, width].

        cond_tokens: `condition_tokens(conds, guide)` (the same at every step of a sampling call:
        made once per call). Sampling reads the outputs of the patches it predicts and of their
        four neighbours (or the patches' own alone, above an AR level or the pixel head), a few of
        the tokens; so the last block computes only those (it still attends to every token): the
        same values as the full pass, for about (depth - 3/4) / depth of its work."""
        count = self.conditions_below
        queries, slots, inside = neighbour_queries(rows, cols, self.grid, patches.shape[0], count)
        if queries.shape[1] >= self.seq_len:  # no saving: as many queries as tokens
            return [c[rows, cols] for c in self.predict_all(patches, mask, cond_tokens)[:count]]
        x = self.run_blocks(self.embed(patches, mask, cond_tokens), queries + self.prefix)
        picked = self.norm(x).flatten(0, 1)[slots]  # [n, count, width]
        if count > 1:
            picked = torch.where(inside.unsqueeze(-1), picked, torch.zeros((), dtype=picked.dtype))
        return list(picked.unbind(1))

    def condition_tokens(self, conds: list[torch.Tensor], guide: torch.Tensor | None) -> torch.Tensor:
        """The tokens [N, prefix, width] before the patches: the guiding pixel, then the conditions
        in reverse order (before position embeddings)."""
        tokens = [self.cond_emb(cond).unsqueeze(1) for cond in reversed(conds[: self.num_conds])]
        if self.guiding_pixel:
            tokens.insert(0, self.pix_proj(guide).unsqueeze(1))
        return torch.cat(tokens, dim=1)

    def embed(self, patches, mask, cond_tokens) -> torch.Tensor:
        """The token sequence [N, prefix + seq_len, width]: `condition_tokens`, then the patches."""
        x = self.patch_emb(patches)
        x = torch.where(mask.unsqueeze(-1), self.mask_token.to(x.dtype), x)
        x = torch.cat([cond_tokens, x], dim=1) + self.pos_embed_learned
        return self.patch_emb_ln(x)

    def run_blocks(self, x: torch.Tensor, last_queries: torch.Tensor | None = None) -> torch.Tensor:
        """The blocks; the last one computes only the `last_queries` tokens [N, M] if given."""
        for block in self.blocks[:-1]:
            x = block(x)
        return self.blocks[-1](x, queries=last_queries)


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


def neighbour_queries(rows: torch.Tensor, cols: torch.Tensor, grid: int, batch: int,
                      count: int = NEIGHBOUR_CONDITIONS) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The tokens to compute so that patches (rows, cols) get their first `count` conditions
    (5: all; 1: the middle one only).

    Returns queries: long [batch, M], each instance's patch positions (patch j of an instance
    takes slots count*j .. count*j + count-1: itself, then top, right, bottom, left; unused slots
    hold position 0); slots: long [n, count], where each pair's outputs lie in the flattened
    [batch * M] outputs; inside: bool [n, count], False for a neighbour past the grid's edge
    (its condition is zero)."""
    column, row = cols % grid, cols // grid
    steps = torch.tensor([0, -grid, 1, grid, -1][:count], device=cols.device)
    positions = cols.unsqueeze(1) + steps  # [n, count]
    inside = torch.stack([torch.ones_like(row, dtype=torch.bool), row > 0, column < grid - 1,
                          row < grid - 1, column > 0][:count], dim=1)
    if count > 1:
        positions = torch.where(inside, positions, cols.unsqueeze(1))
    if rows.numel() == batch and torch.equal(rows, torch.arange(batch, device=rows.device)):
        # One patch per instance, in order (every step of a level that predicts one patch at a
        # time): each instance's slots are its own row.
        slots = torch.arange(batch * count, device=rows.device).view(batch, count)
        return positions, slots, inside
    order = torch.argsort(rows, stable=True)
    sorted_rows = rows[order]
    rank = torch.empty_like(rows)
    first_of_row = torch.searchsorted(sorted_rows, sorted_rows)
    rank[order] = torch.arange(rows.numel(), device=rows.device) - first_of_row  # 0, 1, ... per instance
    width = count * (int(rank.max()) + 1) if rows.numel() else count
    slot = count * rank.unsqueeze(1) + torch.arange(count, device=rows.device)  # [n, count]
    queries = torch.zeros(batch, width, dtype=torch.long, device=cols.device)
    queries[rows.unsqueeze(1).expand(-1, count), slot] = positions
    return queries, rows.unsqueeze(1) * width + slot, inside
