"""A long session must not grow: 300 edits in one process reach a plateau of resident memory."""

import ctypes
import gc
import os
import sys

import numpy as np
import pytest

from fractal_studio.editing.engine import EditOptions
from fractal_studio.editing.imageio import save_pngs
from fractal_studio.editing.session import EditSession, LoadedModel
from fractal_studio.geometry import Rect

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc and glibc")


def resident_mb() -> float:
    gc.collect()
    ctypes.CDLL("libc.so.6").malloc_trim(0)  # what is free goes back, so what stays is in use
    with open(f"/proc/{os.getpid()}/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def test_three_hundred_edits_plateau(converted, tmp_path):
    loaded = LoadedModel.load(converted["toy_cols"], "cpu")
    image = np.random.default_rng(0).integers(0, 256, (48, 64, 3), dtype=np.uint8)
    path = tmp_path / "photo.png"
    save_pngs([(path, image, {})])
    marks = {}
    for i in range(1, 301):
        session = EditSession()
        session.loaded = loaded
        session.open(path)
        session.rectangle(Rect(20, 10, 12, 9))
        run = session.start_run(EditOptions(seed=i, candidates=2, iterations=(4, 2)))
        for _ in run.events():
            pass
        session.finish_run(run)
        session.apply(1)
        session.export(tmp_path / "out.png")
        if i in (100, 200, 300):
            marks[i] = resident_mb()
    early, late = marks[200] - marks[100], marks[300] - marks[200]
    assert late < 2.0, f"resident memory still grows: {marks}"
    assert late <= max(early, 0.5), f"growth does not slow down: {marks}"
