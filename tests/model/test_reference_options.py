"""Our objective against the authors' across the option space (tests/fixtures/record_reference.py)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file

from fractal_studio.model.config import from_authors_lists
from fractal_studio.model.fractal import FractalModel

from ..conftest import FIXTURES

RTOL = 1e-5
RECORDED = FIXTURES / "reference" / "option_space"
_spec = importlib.util.spec_from_file_location("seeded_weights", FIXTURES / "seeded_weights.py")
seeded_weights = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(seeded_weights)


def recorded_model(path: Path):
    with safe_open(str(path), "pt") as handle:
        metadata = handle.metadata()
    args = json.loads(metadata["config"])
    config = from_authors_lists(path.stem, args["img_size_list"], args["embed_dim_list"],
                                args["num_blocks_list"], args["num_heads_list"], args["generator_type_list"],
                                num_conds=args["num_conds"], guiding_pixel=args["guiding_pixel"],
                                class_num=args["class_num"])
    model = FractalModel(config)
    shapes = {name: tuple(t.shape) for name, t in model.state_dict().items()}
    weights = seeded_weights.seeded_state_dict(shapes, int(metadata["seed"]))
    assert seeded_weights.checksum(weights) == pytest.approx(float(metadata["weights_checksum"]), rel=1e-12)
    model.load_state_dict(weights, strict=True)
    return model.eval()


@pytest.mark.parametrize("path", sorted(RECORDED.glob("*.safetensors")), ids=lambda p: p.stem)
def test_objective_matches_authors_with_their_masks(path):
    model, cases = recorded_model(path), load_file(str(path))
    keys = sorted(k for k in cases if k.startswith("nll_"))
    assert len(keys) == 18
    for key in keys:
        _, mode, index, kind = key.split("_")
        i = int(index)
        masks = [cases[k] for k in sorted(k for k in cases if k.startswith(f"masks_{mode}_{i}_{kind}_call"))]
        label = None if mode == "uncond" else cases["labels"][i:i + 1]
        with torch.no_grad():
            ours = model.loss(cases["images"][i:i + 1], label, masks=masks)
        theirs = cases[key]
        assert float((ours.double() - theirs).abs() / theirs.abs()) < RTOL, key
