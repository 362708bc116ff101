"""The edit's options schema: each field's checks, the defaults filled once, the PNG record both ways."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from fractal_studio.editing.engine import _resolve
from fractal_studio.editing.options import MAX_CANDIDATES, MAX_FEATHER, MAX_SEED, OPTIONS, EditOptions
from fractal_studio.errors import UserError
from fractal_studio.model import preset

CONFIG = preset("tiny_mar_in16", class_num=10)  # two generator levels, 16×16 windows


@pytest.mark.parametrize("change,message", [
    ({"class_id": -1}, "class -1 is out of range"),
    ({"class_id": "3"}, "class must be a whole number"),
    ({"cfg": 0.5}, r"guidance scale \(cfg\) must be between 1 \(no guidance\) and 1000, got 0.5"),
    ({"cfg": float("nan")}, "guidance scale"),
    ({"cfg": "2"}, "guidance scale .* must be a number"),
    ({"cfg_schedule": "cosine"}, "cfg schedule must be one of constant, linear, got 'cosine'"),
    ({"temperature": 0.0}, "temperature must be between 0.001 and 100, got 0.0"),
    ({"temperature": 101.0}, "temperature must be between"),
    ({"spread": -0.1}, r"spread must be between 0 \(each pixel's median\) and 1"),
    ({"spread": 1.5}, "spread must be between"),
    ({"filter_threshold": 1.0}, r"filter threshold must be in \[0, 1\), got 1.0"),
    ({"iterations": ()}, "iterations must be whole numbers"),
    ({"iterations": (4, 0)}, "iterations must be at least 1 at every level, got 4,0"),
    ({"iterations": ("4", "2")}, "iterations must be whole numbers"),
    ({"seed": -1}, r"seed must be between 0 and 2\*\*31 - 1, got -1"),
    ({"seed": MAX_SEED + 1}, r"seed must be between 0 and 2\*\*31 - 1"),
    ({"seed": 1.5}, "seed must be a whole number"),
    ({"seed": True}, "seed must be a whole number"),
    ({"candidates": 0}, "the number of candidates must be between 1 and 256, got 0"),
    ({"candidates": MAX_CANDIDATES + 1}, "the number of candidates must be between 1 and 256"),
    ({"margin": -1}, "context margin must be at least 0"),
    ({"work_scale": 0.5}, "at least 1"),
    ({"work_scale": "huge"}, "work scale"),
    ({"feather": -1}, "feather must be between 0 and 256, got -1"),
    ({"feather": MAX_FEATHER + 1}, "feather must be between"),
    ({"seamless": "yes"}, "colour matching must be on or off"),
    ({"precision": "fp8"}, "precision must be one of auto, fp32, bf16, fp16"),
    ({"detail": 1}, "fine detail must be on or off"),
    ({"detail_spread": 2.0}, "detail spread must be between 0"),
])
def test_validate_refuses_each_field_out_of_its_range_in_words(change, message):
    with pytest.raises(UserError, match=message):
        EditOptions(**change).validate()


def test_every_field_is_declared_and_its_limits_are_accepted():
    assert set(OPTIONS) == {f.name for f in dataclasses.fields(EditOptions)}
    assert EditOptions().validate() == EditOptions()
    edge = EditOptions(seed=MAX_SEED, candidates=MAX_CANDIDATES, feather=MAX_FEATHER, cfg=1000.0,
                       temperature=0.001, spread=0.0, filter_threshold=0.0, detail_spread=1.0,
                       iterations=(1, 1), work_scale=2)
    assert edge.validate() is edge
    assert EditOptions(seed=np.int64(3), feather=np.int32(2), cfg=np.float32(1.5)).validate()  # numpy too
    # The flags a front end passes name the field in its words.
    with pytest.raises(UserError, match="^--seed must be between 0 and 2"):
        EditOptions(seed=-1).validate({"seed": "--seed"})


def test_resolved_fills_every_model_default_once():
    config = CONFIG
    config = dataclasses.replace(config, sampling=dataclasses.replace(
        config.sampling, cfg=1.5, temperature=0.8, spread=0.7, filter_threshold=2e-4, iterations=(3, 2)))
    resolved = EditOptions(seed=4, candidates=2).resolved(config)
    sampling = config.sampling
    assert (resolved.cfg, resolved.cfg_schedule, resolved.temperature, resolved.spread,
            resolved.filter_threshold, resolved.iterations) == (
        sampling.cfg, sampling.cfg_schedule, sampling.temperature, sampling.spread,
        sampling.filter_threshold, (3, 2))
    assert resolved.margin == config.resolution // 2 and resolved.detail_spread is None  # no coarse to fine
    given = EditOptions(cfg=2.0, iterations=(5, 1), margin=1).resolved(config)
    assert (given.cfg, given.iterations, given.margin) == (2.0, (5, 1), 1)  # what is given stays
    assert EditOptions().resolved(dataclasses.replace(config, sampling=dataclasses.replace(
        sampling, detail_spread=0.4, detail_iterations=(2, 2)))).detail_spread == 0.4


@pytest.mark.parametrize("change,message", [
    ({"class_id": 10}, "class 10 is out of range: this model has classes 0..9"),
    ({"iterations": (4, 2, 1)}, "give 2 iteration counts"),
    ({"margin": 99}, "context margin must be a whole number from 0 to"),
])
def test_resolved_checks_what_depends_on_the_model(change, message):
    with pytest.raises(UserError, match=message):
        EditOptions(**change).resolved(CONFIG)


def test_the_sampler_request_is_the_resolved_options(toy_model):
    options = EditOptions(class_id=2, cfg=1.5, seed=7, candidates=3, precision="fp32")
    request = _resolve(toy_model, options)
    resolved = options.resolved(toy_model.config)
    for name in ("class_id", "cfg", "cfg_schedule", "temperature", "spread", "filter_threshold",
                 "iterations", "seed", "candidates", "precision"):
        assert getattr(request, name) == getattr(resolved, name), name
    assert request.iterations == toy_model.config.sampling.iterations  # filled here, not by the sampler


def test_the_record_round_trips():
    config = CONFIG
    for options in (EditOptions(), EditOptions(class_id=3, cfg=2.5, cfg_schedule="constant", seed=MAX_SEED,
                                               candidates=4, margin=2, work_scale="native", feather=5,
                                               seamless=False, precision="bf16", detail=False,
                                               iterations=(7, 3), spread=0.25, detail_spread=0.5),
                    EditOptions(work_scale=2.5, filter_threshold=1e-3)):
        resolved = options.resolved(config)
        record = resolved.to_record()
        assert all(isinstance(k, str) and isinstance(v, str) for k, v in record.items())
        assert EditOptions.from_record(record) == resolved
    record = EditOptions(class_id=None, work_scale="auto").resolved(config).to_record()
    assert record["class"] == "none" and record["work_scale_option"] == "auto"
    assert "detail_spread" not in record
    older = {k: v for k, v in record.items() if k not in ("detail", "detail_spread")}  # before coarse to fine
    assert EditOptions.from_record(older).detail is False
    assert set(EditOptions.record_keys()) == set(record) - {"detail"}


@pytest.mark.parametrize("key,value,message", [
    ("seed", "abc", r"the record has a bad 'seed' field \('abc'\): expected a whole number"),
    ("seed", "1" * 5000, "'seed' field that is not one fractal-studio writes"),
    ("seed", "²", "bad 'seed' field"),
    ("seed", str(2**40), r"seed in the record must be between 0 and 2\*\*31 - 1"),
    ("iterations", "", "bad 'iterations' field"),
    ("iterations", "8,x", "bad 'iterations' field"),
    ("iterations", "8,0", "at least 1 at every level"),
    ("candidates", "1000000", "candidates in the record must be between 1 and 256, got 1000000"),
    ("cfg", "nan", "cfg in the record must be between"),
    ("cfg", "lots", "bad 'cfg' field"),
    ("seamless", "maybe", "expected on or off"),
    ("precision", "fp8", "precision in the record must be one of"),
    ("work_scale_option", "0.1", "work scale factor must be at least 1"),
    ("class", "cat", "bad 'class' field"),
])
def test_a_hostile_record_is_refused_in_one_line(key, value, message):
    record = EditOptions().resolved(CONFIG).to_record()
    record[key] = value
    with pytest.raises(UserError, match=message) as error:
        EditOptions.from_record(record)
    assert "\n" not in str(error.value)
    del record[key]
    with pytest.raises(UserError, match=f"the record has no '{key}' field"):
        EditOptions.from_record(record)


def test_the_largest_seed_accepted_runs_an_edit_of_many_windows():
    """Later windows' seeds are derived from the run's seed (crc32 + seed << 32): the largest seed
    validate() accepts must still make seeds torch takes (2**33 failed here before the limit)."""
    import torch

    from fractal_studio.editing.engine import EditResult, run_edit
    from fractal_studio.model import FractalModel

    torch.manual_seed(0)
    model = FractalModel(preset("tiny_mar_in16")).eval()
    image = np.random.default_rng(0).integers(0, 256, (40, 40, 3), dtype=np.uint8)
    mask = np.zeros((40, 40), bool)
    mask[5:35, 5:35] = True
    options = EditOptions(seed=MAX_SEED, iterations=(1, 1), work_scale="native")
    result = list(run_edit(model, image, mask, options))[-1]
    assert isinstance(result, EditResult) and int(result.metadata["windows"]) > 1
    assert result.metadata["seed"] == str(MAX_SEED) and not result.cancelled
