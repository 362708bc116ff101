"""The record an edit leaves in its PNG: every option as it ran (what --vary-detail-of reads back
through EditOptions.from_record), the plan, and the hashes of the model, mask and blend weights."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from fractal_studio.editing.planning import EditOptions, EditPlan

# The sampling settings a record takes from the request as it ran, not from the options asked for.
_SAMPLED = ("cfg", "cfg_schedule", "temperature", "spread", "filter_threshold", "iterations")


def edit_record(config, options: EditOptions, request, plan: EditPlan, image_size: tuple[int, int],
                mask: np.ndarray, precision: str, model_hash: str | None,
                weights: np.ndarray | None = None) -> dict[str, str]:
    """The record of one run at one scale. request: the resolved SampleRequest it ran with;
    image_size: (width, height); precision: what `auto` chose."""
    from fractal_studio import __version__
    from fractal_studio.editing.imageio import array_sha256

    options = replace(options, **{name: getattr(request, name) for name in _SAMPLED})
    options = options.resolved(config, check=False)  # checked before the run
    record = options.to_record()
    record.pop("detail_spread", None)  # the coarse-to-fine record says which spread the finer scales had
    width, height = image_size
    native = plan.working_size == (width, height)
    meta = {
        "software": f"fractal-studio {__version__}",
        "version": __version__,
        "model": config.name,
        "model_sha256": model_hash or "unknown",
        "resolution": str(config.resolution),
        **record,
        "mask_sha256": array_sha256(mask),
        "image_size": f"{width}x{height}",
        "work_scale": "native" if native else f"{plan.scale:g}",
        "working_size": f"{plan.working_size[0]}x{plan.working_size[1]}",
        "windows": str(len(plan.windows)),
        "window_rects": ";".join(f"{r.left},{r.top},{r.width},{r.height}" for r in plan.windows),
        "precision": precision,
        "detail": "off",  # what this edit did (the coarse-to-fine record says "on")
    }
    if weights is not None:  # a soft brush: the blend changes the result, so record it too
        meta["blend_weights_sha256"] = array_sha256(weights)
    if options.class_id is not None:
        meta["class_name"] = config.class_name(int(options.class_id))
    return meta


def coarse_to_fine_record(coarse: dict[str, str], last: dict[str, str], finer: list[EditPlan],
                          detail_request, defaults) -> dict[str, str]:
    """A coarse-to-fine fill's record: the coarse scale's (its plan, seed and sampling settings),
    the last scale's blend settings, and what the finer scales did. detail_request: the finer
    scales' SampleRequest; defaults: the model's SamplingDefaults."""
    record = dict(coarse)
    for key in ("feather", "blend_weights_sha256"):
        record.pop(key, None)
        if key in last:
            record[key] = last[key]
    record.update({
        "detail": "on",
        "detail_scales": ",".join("native" if p.scale == 1.0 else f"{p.scale:g}" for p in finer),
        "detail_spread": f"{detail_request.spread:g}",
        "detail_iterations": ",".join(str(i) for i in detail_request.iterations or ()),
        "detail_windows": ",".join(str(len(p.windows)) for p in finer),
        "detail_lock": _off_or(defaults.detail_lock),
        "layout_samples": str(defaults.layout_samples),
        "guide_classical": _off_or(defaults.guide_classical),
    })
    return record


def _off_or(value: float | None) -> str:
    return "off" if value is None else f"{value:g}"
