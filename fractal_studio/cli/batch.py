"""`fractal-studio batch`: the same edit over a folder of images, the model loaded once.

    fractal-studio batch --images photos/ --masks masks/ --out fixed/       # masks/a.png for photos/a.jpg
    fractal-studio batch --images photos/ --masks logo.png --out fixed/     # one mask for every image
    fractal-studio batch --images photos/ --extend 0,0,128,0 --out wider/   # or --uncrop 1.5

Each image is edited as `inpaint` (`edit` with --class), `outpaint` or `uncrop` would edit it
(editing/tasks.py); its results are OUT/a.png (OUT/a-1.png … with --candidates) with their record.
An image without a mask is skipped with a note; a file that cannot be edited (unreadable, a mask
of another size) is reported in one line and the rest go on. Results that exist are kept, so a
rerun after an interruption resumes (--overwrite redoes them); each result is written atomically,
so Ctrl+C leaves nothing half-written. The exit status is 1 when any image failed.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

from fractal_studio.cli import common
from fractal_studio.errors import UserError
from fractal_studio.untrusted import printable

DESCRIPTION = "edit every image of a folder the same way (inpaint with masks, outpaint or uncrop)"
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff")

log = logging.getLogger(__name__)


def add_parser(subparsers, name: str) -> None:
    parser = subparsers.add_parser(name, help=DESCRIPTION, description=DESCRIPTION + ".")
    parser.add_argument("--images", required=True, metavar="DIR", help="the folder of images to edit")
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument("--masks", metavar="DIR|MASK.png",
                      help="a folder of masks (the mask of a.jpg is the image a.* there) or one mask for "
                           "every image: white = generate, black = keep")
    what.add_argument("--extend", metavar="L,T,R,B",
                      help="outpaint: pixels to add on the left, top, right and bottom, e.g. 0,0,256,0")
    what.add_argument("--uncrop", type=float, metavar="SCALE",
                      help="uncrop: how much smaller each image becomes in the same canvas (> 1), e.g. 1.5")
    parser.add_argument("--out", required=True, metavar="DIR",
                        help="the folder of results (made if missing): OUT/a.png for a.jpg")
    common.add_model_options(parser)
    common.add_sampling_options(parser)
    common.add_options(parser, "edit")
    parser.add_argument("--overwrite", action="store_true",
                        help="edit again the images whose results exist (default: keep them, so a rerun "
                             "resumes)")
    parser.set_defaults(run=run, task=name)


def run(args) -> int:
    from dataclasses import replace

    from fractal_studio.editing.session import LoadedModel
    from fractal_studio.editing.tasks import Task

    options = common.options_from_args(args)
    if args.masks is not None:
        task = Task("edit" if args.class_id is not None else "inpaint")
    elif args.extend is not None:
        task = Task("outpaint", extend=common.parse_ints(args.extend, 4, "--extend", "0,0,256,0"))
    else:
        task = Task("uncrop", scale=args.uncrop)
    task.checked()
    images_dir = folder(args.images, "--images")
    masks = Masks(args.masks, images_dir) if task.masked else None
    out_dir = output_folder(args.out, images_dir, masks)
    images = image_files(images_dir)
    if masks is not None and masks.folder is None:  # one mask kept among the images is not one of them
        images = [image for image in images if image.resolve() != masks.path.resolve()]
    if not images:
        raise UserError(f"--images {printable(images_dir)} holds no images "
                               f"({', '.join(IMAGE_SUFFIXES)})")
    model_path = common.resolve_model_path(args.model)
    model, model_hash = common.load_model_file(model_path, args.device, args.threads)
    loaded = LoadedModel(path=str(model_path), model=model, sha256=model_hash,
                         device=next(model.parameters()).device)
    options = replace(options, class_id=common.match_class(model.config, args.class_id))
    batch = Batch(loaded, task, options, masks, out_dir, args.overwrite, getattr(args, "quiet", False))
    return batch.run(images)


class Batch:
    """The files of one batch run, one after another, and the counts of the summary."""

    def __init__(self, loaded, task, options, masks, out_dir: Path, overwrite: bool, quiet: bool):
        self.loaded, self.task, self.options, self.masks = loaded, task, options, masks
        self.out_dir, self.overwrite, self.quiet = out_dir, overwrite, quiet
        self.edited = self.skipped = self.failed = self.existing = 0
        self.claimed: dict[Path, str] = {}  # result path -> the image that writes it

    def run(self, images: list[Path]) -> int:
        started = time.perf_counter()
        try:
            for number, image in enumerate(images, 1):
                self.one(image, number, len(images))
        except KeyboardInterrupt:
            self.summary(started, interrupted=True)
            raise
        self.summary(started)
        return 1 if self.failed else 0

    def one(self, image: Path, number: int, total: int) -> None:
        name = printable(image.name)
        outputs = self.outputs(image)
        clash = next((self.claimed[path] for path in outputs if path in self.claimed), None)
        if clash is not None:
            self.fail(name, f"its result {printable(outputs[0].name)} is also the result of {clash}; "
                            "rename one of them")
            return
        self.claimed.update((path, name) for path in outputs)
        if not self.overwrite and all(path.exists() for path in outputs):
            self.skipped += 1
            self.existing += 1
            return
        try:
            mask, mask_name = (None, None) if self.masks is None else self.masks.of(image)
            if self.task.masked and mask_name is None:
                self.skipped += 1
                self.note(f"{name}: no mask named {printable(image.stem)}.* in --masks; skipped")
                return
            self.edit(image, mask, mask_name, outputs, f"[{number}/{total}] {name}")
        except UserError as error:
            self.fail(name, str(error))

    def edit(self, image: Path, mask, mask_name, outputs: list[Path], label: str) -> None:
        from fractal_studio.editing.document import Document
        from fractal_studio.editing.imageio import load_mask, save_pngs
        from fractal_studio.editing.tasks import Edited, edit_image

        doc = Document.open(image)
        if mask is None and mask_name is not None:  # a folder's mask: read for this image only
            mask = load_mask(mask_name, size=doc.size)
        shown = None if mask_name is None else f"the mask {printable(Path(mask_name).name)}"
        events = edit_image(self.loaded, doc, self.task, self.options, mask, mask_name=shown or "the mask",
                            source=image.name)
        bar = FileBar(label, self.quiet)
        edited = None
        for event in events:
            if isinstance(event, Edited):
                edited = event
            else:
                bar.update(event)
        bar.done()
        pictures = [(path, pixels, meta)
                    for path, (pixels, meta) in zip(outputs, edited.pictures, strict=True)]
        save_pngs(pictures, source=image)  # all candidates or none, each atomic
        for note in doc.notes:
            self.note(f"{printable(image.name)}: {note}")
        for path in outputs:
            print(path)
        self.edited += 1

    def outputs(self, image: Path) -> list[Path]:
        count = self.options.candidates
        if count == 1:
            return [self.out_dir / f"{image.stem}.png"]
        return [self.out_dir / f"{image.stem}-{k}.png" for k in range(1, count + 1)]

    def fail(self, name: str, message: str) -> None:
        self.failed += 1
        log.error("%s: %s", name, printable(message))

    def note(self, text: str) -> None:
        log.info("note: %s", text)

    def summary(self, started: float, interrupted: bool = False) -> None:
        existing = f" ({self.existing} already done)" if self.existing else ""
        line = (f"batch: {self.edited} edited, {self.skipped} skipped{existing}, {self.failed} failed "
                f"in {time.perf_counter() - started:.1f}s")
        if interrupted:
            line += "; interrupted: run it again to go on (finished results are kept)"
        # -q shows it when something failed or the run was cut short (a warning), else not
        log.log(logging.WARNING if self.failed or interrupted else logging.INFO, "%s", line)


class FileBar(common.ProgressBar):
    """The progress bar of one file, its line headed by which file of how many it is."""

    def __init__(self, label: str, quiet: bool):
        super().__init__(quiet)
        self.label = label

    def show(self, line: str) -> None:
        super().show(f"{self.label} {line}")


class Masks:
    """--masks: one mask for every image, or a folder where the mask of a.jpg is a.*."""

    def __init__(self, given: str, images_dir: Path):
        from fractal_studio.editing.imageio import load_mask

        path = common.input_path(given, "--masks")
        if not path.exists():
            raise UserError(f"--masks {printable(given)} does not exist; give a folder of "
                                   "masks or one mask image")
        self.single = None
        self.path = path
        self.folder = path if path.is_dir() else None
        self.by_stem: dict[str, list[Path]] = {}
        if path.is_dir():
            if path.resolve() == images_dir.resolve():
                raise UserError("--masks is the --images folder: keep the masks in a folder of "
                                       "their own (the mask of a.jpg is masks/a.png)")
            for mask in image_files(path):
                self.by_stem.setdefault(mask.stem, []).append(mask)
        else:
            self.single = load_mask(path)

    def of(self, image: Path):
        """(the mask array or None to read it, the mask's file) of `image`; (None, None) if none."""
        if self.single is not None:
            return self.single, self.path
        found = self.by_stem.get(image.stem, [])
        if len(found) > 1:
            names = ", ".join(printable(p.name) for p in found)
            raise UserError(f"several masks are named {printable(image.stem)}.* ({names}); "
                                   "keep one")
        return (None, found[0]) if found else (None, None)


def folder(given: str, option: str) -> Path:
    path = common.input_path(given, option)
    if not path.is_dir():
        what = "does not exist" if not path.exists() else "is not a folder"
        raise UserError(f"{option} {printable(given)} {what}; give a folder")
    return path


def output_folder(given: str, images_dir: Path, masks: Masks | None) -> Path:
    """--out, made if missing (its parent must exist), and never a folder the batch reads."""
    path = common.input_path(given, "--out")
    if path.exists() and not path.is_dir():
        raise UserError(f"--out {printable(given)} is a file; give a folder for the results")
    read = [images_dir] + ([] if masks is None or masks.folder is None else [masks.folder])
    if path.exists() and any(path.resolve() == folder.resolve() for folder in read):
        raise UserError("--out is a folder the batch reads (--images or --masks): give a folder "
                        "of its own for the results")
    if not path.exists():
        if not path.parent.is_dir():
            raise UserError(f"the folder {printable(path.parent)} of --out does not exist; "
                            "create it first")
        path.mkdir()
    return path


def image_files(path: Path) -> list[Path]:
    """The image files directly in folder `path` (by suffix; hidden files left out), sorted by name."""
    return sorted(p for p in path.iterdir()
                  if not p.name.startswith(".") and p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
