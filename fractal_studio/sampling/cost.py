"""How long a sampling run will take, relative to others: a model of its passes, level by level.

Why not count steps or pixels: a level's transformer pass costs about the same whether it
predicts one patch or many (on a CPU its fixed cost, the per-operation overhead, dominates for
the small batches an edit makes; on a GPU even more so), and each step of a level calls the whole
level below it once, whatever the number of patches it hands down. So a run's time follows the
number of passes at each level, weighted by each level's size, far better than its pixel count:
a window with 8 partly unknown top patches and 60 unknown small patches takes as long as one with
8 and 96 (bundled photo model, 2-core Xeon: 0.48 and 0.50 s; `benchmarks/eta_accuracy.py`).

`call_cost` walks the levels the way the sampler does, from the unknown pixels alone, without the
random order: where the order matters (which patches a step hands down together, and so how many
steps the level below needs: the most any of them has unknown) it takes the expected value over
orders. The result is in seconds of a 2-core Xeon; only ratios matter to the time-left estimate,
which measures the real speed as it goes.
"""

from __future__ import annotations

import math

import numpy as np

from fractal_studio.model.config import ModelConfig

# Measured on a 2-core Xeon in fp32 with the bundled models (benchmarks/eta_accuracy.py): a
# level's pass costs a fixed 0.3 ms (choosing the instances, embeddings, norms, conditions) plus
# 0.3 ms per block, plus its arithmetic: about 2e-10 s per row x token x width^2 per block. A pixel
# head's channel pass is dominated by turning 256 logits per row into a draw: 3.7 us per row.
PASS_SECONDS = 0.3e-3
BLOCK_SECONDS = 0.3e-3
ROW_TOKEN_SECONDS = 2e-10  # per row x token x width^2 of one block
HEAD_ROW_SECONDS = 3.7e-6


def pass_seconds(config: ModelConfig, index: int, rows: float) -> float:
    """One pass of level `index`'s transformer over `rows` instances (a pixel head: one channel)."""
    level = config.levels[index]
    fixed = PASS_SECONDS + level.depth * BLOCK_SECONDS
    if level.kind == "head":  # one value token at a time (KV-cached), then the draw
        return fixed + rows * (HEAD_ROW_SECONDS + level.depth * level.width ** 2 * ROW_TOKEN_SECONDS)
    tokens = (level.size // config.levels[index + 1].size) ** 2 + config.num_conds
    return fixed + level.depth * rows * tokens * level.width ** 2 * ROW_TOKEN_SECONDS


def call_cost(config: ModelConfig, iterations: tuple[int, ...], index: int, unknown: np.ndarray,
              batch: float, guided: bool) -> float:
    """Expected seconds of a call of level `index` on `batch` instances drawn from the population
    `unknown` (bool [n, S, S], each instance's pixels still to generate; a top-level call passes its
    one window and the number of candidates, which then all have that window's unknown pixels)."""
    level = config.levels[index]
    doubled = 2.0 if guided else 1.0
    if level.kind == "head":  # R, then G, then B
        return 3 * pass_seconds(config, index, batch * doubled)
    side = config.levels[index + 1].size
    patches = _patch_unknown(unknown, side)  # bool [n, L, side, side]
    counts = patches.any(axis=(2, 3)).sum(axis=1)  # unknown patches of each instance
    if not counts.any():
        return 0.0
    most = expected_max(counts, batch)
    seq_len = patches.shape[1]
    if level.kind == "mar":
        steps = min(most, max(1.0, math.ceil(iterations[index] * most / seq_len)))
    else:  # an AR level steps through every position any instance has unknown
        steps = most
    own = steps * pass_seconds(config, index, batch * doubled)
    if config.guiding_pixel and level.kind == "mar":  # the guiding pixel, once per call
        own += 3 * pass_seconds(config, len(config.levels) - 1, batch * doubled)
    handed_down = patches.reshape(-1, side, side)[patches.any(axis=(2, 3)).reshape(-1)]
    per_step = max(1.0, batch * float(counts.mean()) / steps)
    return own + steps * call_cost(config, iterations, index + 1, handed_down, per_step, guided)


def expected_max(values: np.ndarray, draws: float) -> float:
    """The expected largest of `draws` values drawn without replacement from `values` (all of them
    when `draws` reaches their number)."""
    values = np.sort(np.asarray(values).ravel())
    n = len(values)
    k = int(round(draws))
    if k >= n:
        return float(values[-1])
    k = max(k, 1)
    # P(the largest is the j-th smallest) = C(j-1, k-1) / C(n, k), for j = k..n
    j = np.arange(k, n + 1)
    log_p = (_log_choose(j - 1, k - 1) - _log_choose(np.array([n]), k))
    return float(np.sum(np.exp(log_p) * values[k - 1:]))


def _log_choose(n: np.ndarray, k: int) -> np.ndarray:
    return np.array([math.lgamma(m + 1) - math.lgamma(k + 1) - math.lgamma(m - k + 1) for m in n])


def _patch_unknown(unknown: np.ndarray, side: int) -> np.ndarray:
    """bool [n, S, S] -> [n, L, side, side]: each instance cut into its patches (raster order)."""
    n, size, _ = unknown.shape
    grid = size // side
    cut = unknown.reshape(n, grid, side, grid, side).transpose(0, 1, 3, 2, 4)
    return cut.reshape(n, grid * grid, side, side)
