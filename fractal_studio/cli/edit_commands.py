"""The editing commands: inpaint, outpaint, uncrop, edit (class edit) and generate.

    fractal-studio inpaint photo.jpg --mask hole.png --out fixed.png
    fractal-studio outpaint photo.jpg --extend 0,0,256,0 --out wider.png
    fractal-studio uncrop photo.jpg --scale 1.5 --out wider.png
    fractal-studio edit photo.jpg --mask dog.png --class tabby --out cat.png
    fractal-studio generate --class 3 --count 8 --out sample.png [--grid]

Everything is checked (files, mask size, class, options, model) before the model runs; nothing is
written unless the whole run succeeds. The generation parameters go into the PNG's text chunks
(`fractal-studio info OUT.png` shows them).
"""

from __future__ import annotations

import logging
import math
from dataclasses import replace
from pathlib import Path

import numpy as np

from fractal_studio.cli import common

log = logging.getLogger(__name__)

DESCRIPTIONS = {
    "inpaint": "fill the white area of a mask image with generated pixels",
    "outpaint": "extend the canvas on any side and generate the new area",
    "uncrop": "shrink the image into the middle of the canvas and generate a border around it",
    "edit": "regenerate the masked area as a chosen class",
    "generate": "generate new images of a class",
}


def add_parser(subparsers, name: str) -> None:
    parser = subparsers.add_parser(name, help=DESCRIPTIONS[name], description=DESCRIPTIONS[name] + ".")
    if name != "generate":
        parser.add_argument("image", help="the image to edit")
    if name in ("inpaint", "edit"):
        parser.add_argument("--mask", required=True,
                            help="mask image of the same size: white = generate, black = keep")
    if name == "inpaint":
        parser.add_argument("--pins", metavar="PINS.png",
                            help="RGBA image of the same size: its fully opaque pixels (alpha 255) inside "
                                 "the mask are kept exactly and the fill is drawn around them; partly "
                                 "transparent pixels and pixels outside the mask are ignored")
    if name in ("inpaint", "edit"):
        parser.add_argument("--uncertainty", metavar="OUT.png",
                            help="also write each result's uncertainty map: per pixel, the entropy of "
                                 "what the model drew it from, in bits summed over R, G and B, as grey "
                                 "(black = certain or kept, white = 24 bits, uniform; grey = bits x 255/24); "
                                 "OUT-1.png … for several results")
        parser.add_argument("--reroll-unsure", metavar="Q", type=float,
                            help="then draw each result's unsure patches again (those whose mean bits are "
                                 "above the Q quantile of its patches, 0 <= Q < 1, e.g. 0.8), the rest of "
                                 "the result kept exactly; the re-rolled results are written")
    if name == "outpaint":
        parser.add_argument("--extend", required=True, metavar="L,T,R,B",
                            help="pixels to add on the left, top, right and bottom, e.g. 0,0,256,0")
    if name == "uncrop":
        parser.add_argument("--scale", required=True, type=float,
                            help="how much smaller the image becomes in the same canvas (> 1), e.g. 1.5")
    parser.add_argument("--out", required=True, help="the PNG to write (OUT-1.png … for several results)")
    common.add_model_options(parser)
    if name == "generate":
        common.add_sampling_options(parser, candidates=False)
        parser.add_argument("--count", type=int, default=1, help="images to generate (default 1)")
        parser.add_argument("--grid", action="store_true", help="write one grid image instead of N files")
    else:
        common.add_sampling_options(parser, class_required=(name == "edit"))
        common.add_edit_options(parser)
    parser.set_defaults(run=run, task=name)


def task_of(args):
    """The Task of an editing command's arguments (--extend, --scale), checked."""
    from fractal_studio.editing.tasks import Task

    extend = None
    if args.task == "outpaint":
        extend = common.parse_ints(args.extend, 4, "--extend", "0,0,256,0")
    return Task(args.task, extend=extend, scale=getattr(args, "scale", None)).checked()


def run(args) -> int:
    from fractal_studio.editing.candidates import CandidateImages
    from fractal_studio.editing.document import Document
    from fractal_studio.editing.imageio import load_mask, load_pins, save_pngs
    from fractal_studio.editing.session import EditSession, LoadedModel
    from fractal_studio.editing.tasks import Task, prepare, records
    from fractal_studio.errors import UserError
    from fractal_studio.untrusted import check_outputs

    task = args.task
    # Every option checked first (its flag named): `generate` runs its --count at native pixels.
    given = {"candidates": args.count, "work_scale": "native"} if task == "generate" else {}
    options = common.options_from_args(args, **given)
    count = options.candidates
    grid = task == "generate" and args.grid
    outputs = common.output_paths(args.out, 1 if grid else count)
    source = None if task == "generate" else common.input_path(args.image, "image")
    mask = getattr(args, "mask", None)
    mask = None if mask is None else common.input_path(mask, "--mask")
    pins = getattr(args, "pins", None)
    pins = None if pins is None else common.input_path(pins, "--pins")
    varied_from = getattr(args, "vary_detail_of", None)
    varied_from = None if varied_from is None else common.input_path(varied_from, "--vary-detail-of")
    model_path = common.resolve_model_path(args.model)
    uncertainty_out = getattr(args, "uncertainty", None)
    maps_out = [] if uncertainty_out is None else common.output_paths(uncertainty_out, count, "--uncertainty")
    reroll = getattr(args, "reroll_unsure", None)
    if reroll is not None and not 0.0 <= reroll < 1.0:
        raise UserError(f"--reroll-unsure must be at least 0 and below 1, got {reroll:g}")
    if reroll is not None and varied_from is not None:
        raise UserError("--reroll-unsure and --vary-detail-of cannot be combined")
    check_outputs([("--out", path) for path in outputs] + [("--uncertainty", path) for path in maps_out],
                  [("--mask", mask), ("--pins", pins), ("--model", model_path),
                   ("--vary-detail-of", varied_from)],
                  source=source, overwrite=getattr(args, "overwrite", False))

    # Inputs, then the model: every check before any work.
    edit = None if task == "generate" else task_of(args)
    session = EditSession()
    doc = None
    mask_file = pins_file = None
    if source is not None:
        if not Path(source).exists():
            raise UserError(f"image not found: {source}")
        doc = session.open(source)
        edit.check_size(*doc.size)
    if edit is not None and edit.masked:
        mask_file = load_mask(mask, size=doc.size)
    if pins is not None:
        pins_file = load_pins(pins, size=doc.size)
    model, model_hash = common.load_model_file(model_path, args.device, args.threads)
    session.loaded = LoadedModel(path=str(model_path), model=model, sha256=model_hash,
                                 device=next(model.parameters()).device)
    options = replace(options, class_id=common.match_class(model.config, args.class_id))
    resolution = model.config.resolution

    if task == "generate":
        side = (resolution, resolution)
        session.set_document(Document(np.zeros((*side, 3), np.uint8), np.ones(side, bool)),
                             blank=np.ones(side, bool))
        doc = session.doc
    else:
        prepare(session, edit, mask_file, f"the mask {getattr(args, 'mask', None)}")
        if pins_file is not None:
            doc.set_pins(pins_file)
    for note in doc.notes:
        log.info("note: %s", note)

    if varied_from is not None:
        options, chosen = options_from_record(varied_from, session, model.config, model_hash)
    run = finished(session, session.start_run(options), args.quiet)
    result = run.result
    if varied_from is not None:  # the earlier run again, then its detail redrawn
        result = finished(session, session.vary_detail(args.seed), args.quiet).result
        result = replace(result, candidates=[result.candidates[chosen]], bits=None,
                         uncertainty=None if result.uncertainty is None else (result.uncertainty[chosen],))
        outputs = outputs[:1]
    if reroll is not None:  # each result's unsure patches drawn again; the re-rolled ones are written
        for k in range(count):
            finished(session, session.reroll_unsure(k, quantile=reroll), args.quiet)
        rerolled = session.run.result
        made = rerolled.candidates
        result = replace(rerolled, candidates=CandidateImages(made.base, made.box, list(made.crops[count:])),
                         uncertainty=rerolled.uncertainty[count:])

    metas = records(result, edit or Task("inpaint"), model_path.name,
                    None if source is None else Path(source).name)
    if task == "generate":
        for meta in metas:
            meta["task"] = "generate"
    if grid:
        meta = metas[0]
        meta.pop("candidate")
        pictures = [(outputs[0], make_grid(result.candidates), meta)]
    else:
        pictures = []
        for path, pixels, meta in zip(outputs, result.candidates, metas, strict=True):
            if varied_from is not None:  # the earlier run's candidate, with new detail
                meta["candidate"] = f"{chosen + 1}/{options.candidates}"
                meta["varied_from"] = Path(varied_from).name
                meta["detail_seed"] = str(int(args.seed))
            pictures.append((path, pixels, meta))
    pictures += uncertainty_pictures(result, maps_out, doc.image.shape[:2])
    # All or nothing: if one file cannot be written, none is, and files that were there stay.
    save_pngs(pictures, source=source, overwrite_source=getattr(args, "overwrite", False))
    for path, _, _ in pictures:
        print(path)
    if result.bits is not None and not grid:
        log.info("best first by the model's likelihood of the fill: %s bits per generated value",
                 ", ".join(f"{Path(path).name} {bits:.3f}"
                           for (path, _, _), bits in zip(pictures, result.bits, strict=True)))
    plan = result.plan
    scale = "native" if plan is None or plan.native else f"1/{plan.scale:g}"
    windows = 0 if plan is None else len(plan.windows)
    log.info("%s: %d file(s) in %.1fs (%d window(s), scale %s)", task, len(pictures), result.elapsed, windows,
             scale)
    return 0


def uncertainty_pictures(result, paths: list[Path], shape: tuple[int, int]) -> list[tuple]:
    """(path, grey RGB pixels, record) of each result's uncertainty map (editing/uncertainty.py)."""
    from fractal_studio.editing.uncertainty import MAX_BITS, full_map, heat_image

    pictures = []
    for path, bits in zip(paths, result.uncertainty if paths else (), strict=True):
        grey = heat_image(full_map(bits, result.candidates.box, shape))
        record = {"uncertainty": f"bits per pixel summed over R, G, B; grey = bits x 255/{MAX_BITS:g}"}
        pictures.append((path, np.repeat(grey[..., None], 3, axis=-1), record))
    return pictures


def finished(session, run, quiet: bool):
    """Runs `run` to its end with a progress bar; a UserError if it did not finish."""
    from fractal_studio.editing.engine import EditResult
    from fractal_studio.errors import UserError

    bar = common.ProgressBar(quiet)
    for event in run.events():
        if not isinstance(event, EditResult):
            bar.update(event)
    bar.done()
    session.finish_run(run)
    if run.result is None or run.result.cancelled:
        raise UserError("the run was cancelled; nothing was written")
    return run


def options_from_record(path, session, config, model_hash: str):
    """(the EditOptions of the run that wrote the result at `path`, which of its candidates it is),
    after checking that it was made from this image, mask and model, and that its record holds
    options this model can run (a record is text anyone can write: each field is checked as the
    command's own options are, before any sampling)."""
    from fractal_studio.editing.imageio import array_sha256, read_png_metadata
    from fractal_studio.editing.options import EditOptions
    from fractal_studio.errors import UserError
    from fractal_studio.untrusted import printable

    record = read_png_metadata(path)
    needed = (*EditOptions.record_keys(), "mask_sha256", "model_sha256")
    missing = [key for key in needed if key not in record]
    if missing:
        raise UserError(f"{printable(path)} has no record of the run that made it ({', '.join(missing[:3])} "
                        f"…): only results written by fractal-studio can have their detail varied")
    if record["model_sha256"] != model_hash:
        raise UserError(f"{printable(path)} was made with another model "
                        f"({printable(record.get('model', '?'))[:80]}); pass that one with --model")
    if record["mask_sha256"] != array_sha256(session.doc.mask):
        raise UserError(f"{printable(path)} was made from another image or mask: give the same ones")
    where = f"the record of {printable(Path(path).name)}"
    try:
        options = EditOptions.from_record(record, where).resolved(config)
    except UserError as error:
        message = str(error)
        if where not in message:
            message = f"{where}: {message}"
        raise UserError(f"{message}; its detail cannot be varied") from None
    text = record.get("candidate", f"1/{options.candidates}")
    parts = text.split("/")
    if len(parts) != 2 or not all(part.isascii() and part.isdigit() and len(part) <= 4 for part in parts) \
            or int(parts[1]) != options.candidates or not 1 <= int(parts[0]) <= options.candidates:
        raise UserError(f"{where} has a bad 'candidate' field ({printable(text)[:40]!r}): expected which of "
                        f"its {options.candidates} candidates it is, such as 1/{options.candidates}")
    return options, int(parts[0]) - 1


def make_grid(images: list[np.ndarray], gap: int = 2) -> np.ndarray:
    """Tiles equal-size images in a near-square grid with a `gap`-pixel black border between them."""
    count = len(images)
    cols = math.ceil(math.sqrt(count))
    rows = math.ceil(count / cols)
    h, w = images[0].shape[:2]
    grid = np.zeros((rows * h + (rows - 1) * gap, cols * w + (cols - 1) * gap, 3), np.uint8)
    for index, image in enumerate(images):
        r, c = divmod(index, cols)
        grid[r * (h + gap):r * (h + gap) + h, c * (w + gap):c * (w + gap) + w] = image
    return grid
