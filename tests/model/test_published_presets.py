"""The converter accepts the published checkpoints' exact key/shape lists, and parameter counts match."""

from __future__ import annotations

import json

import pytest
import torch

from fractal_studio.model import FractalModel, preset
from fractal_studio.model.convert import our_key
from fractal_studio.model.weights import check_state_dict

from ..conftest import REFERENCE

MANIFESTS = json.loads((REFERENCE / "official_state_dict_manifests.json").read_text())


@pytest.mark.parametrize("name", sorted(MANIFESTS))
def test_published_layout_converts_and_counts_match(name):
    manifest = MANIFESTS[name]
    config = preset(name)
    assert config.num_conds == manifest["constructor_kwargs"]["num_conds"]
    assert config.guiding_pixel == manifest["constructor_kwargs"]["guiding_pixel"]
    shapes = {our_key(key, len(config.generators)): tuple(shape) for key, shape in manifest["state_dict"]}
    assert len(shapes) == len(manifest["state_dict"]), "two published keys mapped to one of ours"
    check_state_dict(shapes, config, name)  # raises on any mismatch
    with torch.device("meta"):
        model = FractalModel(config)
    assert sum(p.numel() for p in model.parameters()) == manifest["num_parameters"]


def test_a_wrong_shape_is_reported_by_name():
    from fractal_studio.errors import ModelFileError

    name = "fractalmar_in64"
    config = preset(name)
    shapes = {our_key(k, 2): tuple(s) for k, s in MANIFESTS[name]["state_dict"]}
    shapes["levels.0.patch_emb.weight"] = (7, 7)
    del shapes["head.cond_proj.bias"]
    with pytest.raises(ModelFileError) as error:
        check_state_dict(shapes, config, "x.pth")
    message = str(error.value)
    assert "levels.0.patch_emb.weight is [7, 7]" in message and "head.cond_proj.bias" in message


@pytest.mark.parametrize("name", sorted(MANIFESTS))
def test_key_mapping_is_invertible(name):
    from fractal_studio.model.convert import authors_key

    levels = len(preset(name).generators)
    for key, _ in MANIFESTS[name]["state_dict"]:
        assert authors_key(our_key(key, levels), levels) == key
