"""Known pixels, events, cancel, reproducibility and request validation of the sampler."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from fractal_studio.errors import UserError
from fractal_studio.sampling import Finished, Progress, SampleRequest, sample, sample_all

from ..conftest import random_model

TINY_PRESETS = ("tiny_mar_in16", "tiny_ar_in16", "tiny_mar_guiding_in16")


@pytest.fixture(scope="module", params=TINY_PRESETS)
def tiny(request):
    return random_model(request.param, class_num=4)


def random_known(rng: np.random.Generator, shape: str) -> np.ndarray:
    known = np.ones((16, 16), bool)
    if shape == "pixels":
        known = rng.random((16, 16)) > 0.3
    elif shape == "rectangle":
        top, left = rng.integers(0, 10, 2)
        known[top:top + 5, left:left + 7] = False
    elif shape == "stroke":
        for x in range(16):
            y = int(8 + 4 * np.sin(x / 3))
            known[max(0, y - 1):y + 2, x] = False
    elif shape == "border":
        known[:, :3] = False
        known[-2:, :] = False
    return known


@pytest.mark.parametrize("shape", ["pixels", "rectangle", "stroke", "border"])
@pytest.mark.parametrize("cfg", [1.0, 2.5])
def test_known_pixels_are_bit_exact(tiny, shape, cfg):
    rng = np.random.default_rng(len(shape))
    canvas = rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)
    known = random_known(rng, shape)
    request = SampleRequest(canvas=canvas, known=known, class_id=1, cfg=cfg, candidates=2, seed=3,
                            iterations=(4, 2, 2)[: len(tiny.levels)])
    result = sample_all(tiny, request)
    assert not result.cancelled and len(result.candidates) == 2
    for candidate in result.candidates:
        assert candidate.dtype == np.uint8 and candidate.shape == (16, 16, 3)
        assert np.array_equal(candidate[known], canvas[known])
    # the unknown pixels were really generated (a random model won't reproduce the hidden values)
    assert not np.array_equal(result.candidates[0][~known], canvas[~known])


def test_fully_known_canvas_returns_unchanged_at_once(tiny):
    canvas = np.random.default_rng(0).integers(0, 256, (16, 16, 3), dtype=np.uint8)
    events = list(sample(tiny, SampleRequest(canvas=canvas, known=np.ones((16, 16), bool))))
    assert len(events) == 1 and isinstance(events[0], Finished)
    assert np.array_equal(events[0].candidates[0], canvas)


def test_same_seed_same_pixels_other_seed_other_pixels(tiny):
    request = SampleRequest.generate(16, class_id=2, cfg=2.0, seed=7,
                                     iterations=(4, 2, 2)[: len(tiny.levels)])
    first = sample_all(tiny, request).candidates[0]
    again = sample_all(tiny, request).candidates[0]
    from dataclasses import replace

    other = sample_all(tiny, replace(request, seed=8)).candidates[0]
    assert np.array_equal(first, again)
    assert not np.array_equal(first, other)


def test_events_are_ordered_and_progress_is_monotone(tiny):
    request = SampleRequest.generate(16, seed=1, iterations=(4, 2, 2)[: len(tiny.levels)])
    events = list(sample(tiny, request))
    progress = [e for e in events if isinstance(e, Progress)]
    assert isinstance(events[-1], Finished) and all(isinstance(e, Progress) for e in events[:-1])
    fractions = [e.fraction for e in progress]
    assert fractions == sorted(fractions) and fractions[-1] == pytest.approx(1.0)
    top = [e for e in progress if e.level == 0]
    assert [e.step for e in top] == list(range(1, top[0].steps + 1))
    assert any(e.level == 1 for e in progress)  # the second level reports its steps too
    assert all(e.canvas.shape == (1, 16, 16, 3) for e in progress)
    assert np.array_equal(progress[-1].canvas[0], events[-1].candidates[0])
    elapsed = [e.elapsed for e in progress]
    assert elapsed == sorted(elapsed)


def test_cancel_stops_within_one_step_and_equals_the_prefix_of_a_full_run(tiny):
    request = SampleRequest.generate(16, seed=5, iterations=(8, 2, 2)[: len(tiny.levels)])
    full = [e for e in sample(tiny, request) if isinstance(e, Progress)]
    stop_after = len(full) // 2
    cancel = threading.Event()
    seen = []
    final = None
    for event in sample(tiny, request, cancel=cancel):
        if isinstance(event, Finished):
            final = event
            break
        seen.append(event)
        if len(seen) == stop_after:
            cancel.set()
    assert final is not None and final.cancelled
    assert len(seen) == stop_after  # nothing after the step in progress when cancel was set
    for ours, reference in zip(seen, full):
        assert np.array_equal(ours.canvas, reference.canvas)
    assert np.array_equal(final.candidates[0], seen[-1].canvas[0])


def test_cancel_keeps_known_pixels(tiny):
    rng = np.random.default_rng(1)
    canvas = rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)
    known = random_known(rng, "rectangle")
    calls = {"n": 0}

    def cancel_soon():
        calls["n"] += 1
        return calls["n"] > 2

    result = sample_all(tiny, SampleRequest(canvas=canvas, known=known, seed=0,
                                            iterations=(4, 2, 2)[: len(tiny.levels)]), cancel=cancel_soon)
    assert result.cancelled
    assert np.array_equal(result.candidates[0][known], canvas[known])


def test_small_hole_takes_few_top_level_steps():
    model = random_model("tiny_mar_in16")
    canvas = np.zeros((16, 16, 3), np.uint8)
    known = np.ones((16, 16), bool)
    known[5:7, 5:7] = False  # inside one 4x4 patch
    events = list(sample(model, SampleRequest(canvas=canvas, known=known, iterations=(16, 4))))
    top = [e for e in events if isinstance(e, Progress) and e.level == 0]
    assert len(top) == 1  # one unknown patch: one step, not 16
    level1 = [e for e in events if isinstance(e, Progress) and e.level == 1]
    assert len(level1) <= 4  # four unknown pixels at the next level


@pytest.mark.parametrize("change, message", [
    (dict(canvas=np.zeros((8, 8, 3), np.uint8)), "canvas must be a uint8 array of shape"),
    (dict(canvas=np.zeros((16, 16, 3), np.float32)), "canvas must be a uint8"),
    (dict(known=np.ones((16, 15), bool)), "known mask must have shape"),
    (dict(known=np.ones((16, 16), np.uint8)), "known mask must be boolean"),
    (dict(class_id=4), "class 4 is out of range"),
    (dict(class_id=-1), "out of range"),
    (dict(cfg=0.5), r"between 1.0 \(no guidance\)"),
    (dict(cfg=1e308), r"between 1.0 \(no guidance\)"),
    (dict(temperature=1e-30), "temperature must be between"),
    (dict(spread=1.5), "spread must be between 0"),
    (dict(spread=float("nan")), "spread must be between 0"),
    (dict(cfg_schedule="cosine"), "cfg schedule"),
    (dict(temperature=0.0), "temperature"),
    (dict(iterations=(4, 0)), "at least 1"),
    (dict(iterations=(4,)), "one per generator level"),
    (dict(candidates=0), "candidates"),
])
def test_bad_requests_fail_before_any_work(change, message):
    model = random_model("tiny_mar_in16", class_num=4)
    base = dict(canvas=np.zeros((16, 16, 3), np.uint8), known=np.zeros((16, 16), bool), iterations=(4, 2))
    base.update(change)
    generator = sample(model, SampleRequest(**base))
    with pytest.raises(UserError, match=message):
        next(generator)


def test_mar_steps_scale_with_the_unknown_patches():
    from fractal_studio.sampling.sampler import mar_steps

    assert mar_steps(64, 256, 256) == 64  # full generation: the requested iterations
    assert mar_steps(64, 64, 256) == 16  # a quarter of the patches: a quarter of the steps
    assert mar_steps(16, 3, 16) == 3  # never more steps than patches
    assert mar_steps(16, 1, 256) == 1 and mar_steps(16, 0, 256) == 0


def test_a_quarter_hole_takes_a_quarter_of_the_top_level_steps():
    model = random_model("tiny_mar_in16")
    known = np.ones((16, 16), bool)
    known[:8, :8] = False  # 4 of the 16 top-level patches
    events = list(sample(model, SampleRequest(canvas=np.zeros((16, 16, 3), np.uint8), known=known,
                                              iterations=(16, 4))))
    top = [e for e in events if isinstance(e, Progress) and e.level == 0]
    assert len(top) == 4


def test_precision_choice(monkeypatch):
    import torch

    from fractal_studio.devices import resolve_precision

    cpu = torch.device("cpu")
    assert resolve_precision(cpu, "auto") == "fp32"  # sampling measures instead (test_precision.py)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: (8, 0))
    assert resolve_precision(torch.device("cuda"), "auto") == "bf16"  # more in tests/test_devices.py
    assert resolve_precision(cpu, "fp32") == "fp32"
    with pytest.raises(UserError, match="precision"):
        resolve_precision(cpu, "fp8")


def test_bf16_sampling_keeps_known_pixels_exact():
    model = random_model("tiny_mar_guiding_in16")
    rng = np.random.default_rng(3)
    canvas = rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)
    known = random_known(rng, "stroke")
    result = sample_all(model, SampleRequest(canvas=canvas, known=known, precision="bf16",
                                             iterations=(4, 2, 2)))
    assert np.array_equal(result.candidates[0][known], canvas[known])
    assert not np.array_equal(result.candidates[0][~known], canvas[~known])


def test_mar_instances_waiting_for_a_later_step_are_not_computed(monkeypatch):
    """An edit's partly known patches wait most steps; skipping them must not change a pixel."""
    from fractal_studio.sampling import sampler

    model = random_model("tiny_mar_guiding_in16", class_num=3)
    known = np.ones((16, 16), bool)
    known[2:9, 3:12] = False  # touches several patches, some only at their edges
    known[14:, :3] = False
    canvas = np.random.default_rng(0).integers(0, 256, (16, 16, 3), dtype=np.uint8)
    request = SampleRequest(canvas=canvas, known=known, class_id=1, cfg=2.0, candidates=3, seed=5)
    rows_computed = []
    original_predict = sampler._Run.predict_where_needed

    def counting(self, level, patches, masked, cond_tokens, rows, cols):
        instances = []
        real_predict = level.predict_patches

        def recording(patches, *args):
            instances.append(patches.shape[0])
            return real_predict(patches, *args)

        level.predict_patches = recording
        try:
            return original_predict(self, level, patches, masked, cond_tokens, rows, cols)
        finally:
            del level.predict_patches
            rows_computed.append((instances[0], self.doubled(patches).shape[0]))

    monkeypatch.setattr(sampler._Run, "predict_where_needed", counting)
    skipping = sample_all(model, request).candidates

    def every_instance(self, level, patches, masked, cond_tokens, rows, cols):
        full = level.predict_all(self.doubled(patches), self.doubled(masked), cond_tokens)
        return [self.pick_rows(c, rows, cols) for c in full]

    monkeypatch.setattr(sampler._Run, "predict_where_needed", every_instance)
    computing_all = sample_all(model, request).candidates
    assert all(np.array_equal(a, b) for a, b in zip(skipping, computing_all))
    assert sum(done for done, _ in rows_computed) < sum(full for _, full in rows_computed)


@pytest.mark.parametrize("preset, iterations", [("tiny_mar_guiding_in16", None), ("tiny_ar_in16", None),
                                                ("tiny_mar_in16", (4, 2))])
def test_the_events_canvases_and_regions_are_those_of_the_whole_canvas(monkeypatch, preset, iterations):
    """Steps below the top convert only the patches they fill: the same canvases and regions as
    converting and comparing the whole canvas at every event."""
    from fractal_studio.sampling import sampler

    model = random_model(preset, class_num=3)
    known = np.ones((16, 16), bool)
    known[1:10, 2:13] = False  # partly known patches: their known pixels stay the request's
    canvas = np.random.default_rng(1).integers(0, 256, (16, 16, 3), dtype=np.uint8)
    request = SampleRequest(canvas=canvas, known=known, class_id=1, cfg=2.0, candidates=2, seed=3,
                            iterations=iterations)

    def events():
        return [e for e in sample(model, request) if isinstance(e, Progress)]

    partial = events()
    assert any(e.level == 1 for e in partial)

    def whole_canvas(self, step):
        converted = self.to_uint8(step.on_canvas())
        return converted, sampler.changed_region(self.last_canvas, converted)

    monkeypatch.setattr(sampler._Run, "canvas_after", whole_canvas)
    whole = events()
    assert len(partial) == len(whole)
    for fast, full in zip(partial, whole, strict=True):
        assert np.array_equal(fast.canvas, full.canvas)
        assert fast.region == full.region
    assert len({id(e.canvas) for e in partial}) == len(partial)  # each event keeps its own canvas
