"""Training data: torch datasets of uint8 images and the loader that feeds them to the trainer.

Every dataset yields `(image, label)`: `image` a uint8 tensor [3, S, S] (RGB), `label` an int
(the class index, or -1 for unconditional data); a batch from `make_loader` is (uint8 [B, 3, S, S],
int64 [B]).

Sources:
- "photos": `PhotoCrops` over `photo_files("train")`, and `heldout_crops` over
  `photo_files("heldout")` (whole photos kept out of training). Crops are taken from the photo
  downscaled by a factor from `scales`, because the editor runs the model on images downscaled by
  such factors: the model has to know how photos look at each of those scales.
- "fashion-mnist": `fashion_mnist(split)` (tensors) or `FashionMNIST(split)` (a dataset).
- a user's folder: `ImageFolderDataset` (class subfolders, or a flat folder).

Random augmentation is a function of (seed, index) only, so an item is the same whichever worker
decodes it and however many workers there are; `epoch_indexed` datasets take indices past their
length for other crops in later epochs (see `loaders`, whose `make_loader` is re-exported here).
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
import struct
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import ExifTags, Image
from torch.utils.data import Dataset

from fractal_studio.editing.imageio import load_image
from fractal_studio.errors import UserError
from fractal_studio.training.fetch import ensure_fashion_mnist, ensure_photo_sources, photo_files
from fractal_studio.training.loaders import make_loader
from fractal_studio.training.sources import (
    DATA_ENV,
    FASHION_MNIST_FILES,
    HELDOUT_PHOTOS,
    PACKAGE_LICENCES,
    PHOTO_CREDITS,
    PHOTO_FILES,
    DataSourceError,
    data_dir,
    licence_summary,
    package_dir,
)
from fractal_studio.untrusted import MAX_GZIP_INFLATED_BYTES, printable, read_bytes, read_gzip

log = logging.getLogger(__name__)

__all__ = [
    "DATA_ENV",
    "FASHION_MNIST_CLASSES",
    "FASHION_MNIST_FILES",
    "HELDOUT_PHOTOS",
    "IMAGE_EXTENSIONS",
    "PACKAGE_LICENCES",
    "PHOTO_CREDITS",
    "PHOTO_FILES",
    "DataSourceError",
    "FashionMNIST",
    "ImageFolderDataset",
    "PhotoCrops",
    "data_dir",
    "ensure_fashion_mnist",
    "ensure_photo_sources",
    "fashion_mnist",
    "heldout_crops",
    "licence_summary",
    "load_rgb",
    "make_loader",
    "photo_files",
]

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".gif")

FASHION_MNIST_CLASSES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)


# ----------------------------------------------------------------------------------------- helpers
def _item_rng(seed: int, index: int) -> np.random.Generator:
    return np.random.default_rng([int(seed) & 0xFFFFFFFFFFFFFFFF, int(index)])


def _check_scales(scales: Sequence[int]) -> tuple[int, ...]:
    out = tuple(int(s) for s in scales)
    if not out or any(s < 1 or s != f for s, f in zip(out, scales, strict=True)):
        raise ValueError(f"scales must be integers >= 1, got {scales!r}")
    return out


def _to_tensor(hwc: np.ndarray, flip: bool = False) -> torch.Tensor:
    if flip:
        hwc = hwc[:, ::-1]
    return torch.from_numpy(np.ascontiguousarray(hwc.transpose(2, 0, 1)))


def load_rgb(path: str | os.PathLike) -> Image.Image:
    """Decode an image file as 8-bit RGB with the editor's decoder (`editing.imageio.load_image`:
    EXIF orientation, 16-bit reduction, palette and colour-key transparency composited on white), so
    the model trains on the pixels the editor will show it. A file the decoder refuses raises its
    UserError."""
    return Image.fromarray(load_image(path, check_jpeg_whole=False).pixels, "RGB")


def _readable_header(path: Path) -> bool:
    try:
        _image_size(path)
        return True
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError):
        return False


def _image_size(path: Path) -> tuple[int, int]:
    """(width, height) after EXIF orientation, read from the header only."""
    with Image.open(path) as im:
        w, h = im.size
        if im.getexif().get(ExifTags.Base.Orientation, 1) in (5, 6, 7, 8):  # quarter turns
            w, h = h, w
    return w, h


def _valid_scales(w: int, h: int, size: int, scales: tuple[int, ...]) -> tuple[int, ...]:
    """The scales at which the downscaled image still holds a size x size crop (all fit: () )."""
    return tuple(s for s in scales if min(w // s, h // s) >= size)


def _downscale(im: Image.Image, scale: int, size: int) -> Image.Image:
    """Area-filter `im` by the integer factor `scale` (box average of scale x scale pixels).

    An image too small for a size x size crop even at scale 1 is enlarged (bicubic) until its
    shorter side is `size`.
    """
    if min(im.size) < size:
        w, h = im.size
        f = size / min(w, h)
        return im.resize((max(size, round(w * f)), max(size, round(h * f))), Image.Resampling.BICUBIC)
    return im.reduce(scale) if scale > 1 else im


# ------------------------------------------------------------------------------------ photo crops
class _PhotoStore:
    """Per-process store of photos downscaled by each factor, with a least-recently-used byte budget."""

    def __init__(self, files: Sequence[Path], cache_bytes: int):
        self.files = list(files)
        self.cache_bytes = cache_bytes
        self._sizes: dict[int, tuple[int, int]] = {}
        self._cache: OrderedDict[tuple[int, int], np.ndarray] = OrderedDict()
        self._used = 0

    def size(self, k: int) -> tuple[int, int]:
        if k not in self._sizes:
            self._sizes[k] = _image_size(self.files[k])
        return self._sizes[k]

    def get(self, k: int, scale: int, size: int) -> np.ndarray:
        key = (k, scale)
        arr = self._cache.get(key)
        if arr is not None:
            self._cache.move_to_end(key)
            return arr
        full = self._cache.get((k, 1))
        im = Image.fromarray(full) if full is not None else load_rgb(self.files[k])
        arr = np.asarray(_downscale(im, scale, size))
        self._cache[key] = arr
        self._used += arr.nbytes
        while self._used > self.cache_bytes and len(self._cache) > 1:
            _, old = self._cache.popitem(last=False)
            self._used -= old.nbytes
        return arr

    def __getstate__(self):  # a copy sent to a worker starts with an empty cache
        state = self.__dict__.copy()
        state["_cache"], state["_used"] = OrderedDict(), 0
        return state


class PhotoCrops(Dataset):
    """Random size x size crops of photos, each from the photo downscaled by a factor in `scales`.

    Item `index`: a photo (uniform), a scale (uniform among those at which the downscaled photo
    still holds a crop), a uniform crop position and a horizontal flip (p = 1/2), all drawn from
    (seed, index). Downscaling is area filtering by an integer factor; the downscaled photos are
    kept in memory in each worker process (at most `cache_bytes` per process, least recently used
    dropped first). Yields (uint8 [3, size, size], -1). `epoch_len` is the length of an epoch.
    """

    epoch_indexed = True

    def __init__(
        self,
        files: Sequence[str | os.PathLike],
        size: int = 64,
        scales: Sequence[int] = (1, 2, 4, 8),
        epoch_len: int = 10_000,
        seed: int = 0,
        hflip: bool = True,
        cache_bytes: int = 2 << 30,
    ):
        if not files:
            raise ValueError("PhotoCrops needs at least one photo")
        if size < 1 or epoch_len < 1:
            raise ValueError("size and epoch_len must be positive")
        self.files = [Path(f) for f in files]
        self.size = int(size)
        self.scales = _check_scales(scales)
        self.epoch_len = int(epoch_len)
        self.seed = int(seed)
        self.hflip = hflip
        self.class_names: tuple[str, ...] = ()
        self._store = _PhotoStore(self.files, cache_bytes)

    def __len__(self) -> int:
        return self.epoch_len

    def crop(self, index: int) -> tuple[torch.Tensor, int, int]:
        """Item `index` as (image, photo number, scale used)."""
        if index < 0:
            raise IndexError(index)
        rng = _item_rng(self.seed, index)
        k = int(rng.integers(len(self.files)))
        scale_pick, y_pick, x_pick, flip = rng.random(4)
        valid = _valid_scales(*self._store.size(k), self.size, self.scales) or (1,)
        scale = valid[int(scale_pick * len(valid))]
        arr = self._store.get(k, scale, self.size)
        h, w = arr.shape[:2]
        y = int(y_pick * (h - self.size + 1))
        x = int(x_pick * (w - self.size + 1))
        img = _to_tensor(arr[y : y + self.size, x : x + self.size], self.hflip and flip < 0.5)
        return img, k, scale

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        return self.crop(index)[0], -1


def heldout_crops(
    files: Sequence[str | os.PathLike],
    size: int = 64,
    scales: Sequence[int] = (1, 2, 4, 8),
    count: int = 256,
    seed: int = 0,
) -> torch.Tensor:
    """A fixed evaluation set: uint8 [count, 3, size, size] crops of `files`, no flips.

    Item i takes photo i % len(files) at scale scales[(i // len(files)) % len(scales)] (the largest
    that still fits when the photo is too small for it) and a crop position drawn from (seed, i), so
    photos and scales are balanced and the same arguments always give the same tensor.
    """
    files = [Path(f) for f in files]
    if not files:
        raise ValueError("heldout_crops needs at least one photo")
    scales = _check_scales(scales)
    out = torch.empty((count, 3, size, size), dtype=torch.uint8)
    for k, path in enumerate(files):
        items = range(k, count, len(files))
        if not items:
            continue
        im = load_rgb(path)
        downscaled: dict[int, np.ndarray] = {}
        valid = _valid_scales(*im.size, size, scales)
        for i in items:
            wanted = scales[(i // len(files)) % len(scales)]
            scale = wanted if wanted in valid else max((s for s in valid if s < wanted), default=1)
            if scale not in downscaled:
                downscaled[scale] = np.asarray(_downscale(im, scale, size))
            arr = downscaled[scale]
            h, w = arr.shape[:2]
            y_pick, x_pick = _item_rng(seed, i).random(2)
            y, x = int(y_pick * (h - size + 1)), int(x_pick * (w - size + 1))
            out[i] = _to_tensor(arr[y : y + size, x : x + size])
    return out


# ---------------------------------------------------------------------------------- image folders
def _heldout_score(relpath: str) -> float:
    digest = hashlib.sha1(relpath.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") / 2.0**64


def _is_image(p: Path) -> bool:
    return p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS and not p.name.startswith(".")


class ImageFolderDataset(Dataset):
    """Images of a folder: class subfolders (class-conditional) or image files directly in it.

    When `root` has subfolders holding images (at any depth), each such subfolder is a class, class
    names are the sorted subfolder names and image files directly in `root` are ignored. Otherwise
    the images directly in `root` make an unconditional dataset (label -1, `class_names == ()`).

    The held-out split is fixed by the file's relative path alone: a file is held out when the hash
    of its path falls in the first `heldout_fraction` of the range (when none does, the single file
    with the lowest hash is). Adding or removing other files never moves a file between splits.

    Training (`train=True`): item index -> file index % n_files, a scale among `scales` (uniform among
    those at which the image holds a crop; too small an image is enlarged to `size`), a random crop
    and a random horizontal flip, all drawn from (seed, index); `epoch_len` (default: one pass over
    the files) is the length of an epoch. Held out (`train=False`): one centre crop per (file,
    scale), no flip. Images are decoded (Pillow, as RGB) when an item is asked for, in the workers.
    """

    epoch_indexed = True

    def __init__(
        self,
        root: str | os.PathLike,
        size: int,
        scales: Sequence[int] = (1,),
        train: bool = True,
        heldout_fraction: float = 0.05,
        epoch_len: int | None = None,
        seed: int = 0,
        hflip: bool = True,
    ):
        self.root = Path(root)
        if not self.root.is_dir():
            raise UserError(f"The image folder {self.root} does not exist or is not a folder.")
        self.size = int(size)
        self.scales = _check_scales(scales)
        self.train = train
        self.seed = int(seed)
        self.hflip = hflip

        subdirs = sorted(d for d in self.root.iterdir() if d.is_dir() and not d.name.startswith("."))
        per_class = [(d.name, sorted(p for p in d.rglob("*") if _is_image(p))) for d in subdirs]
        per_class = [(name, files) for name, files in per_class if files]
        if per_class:
            self.class_names: tuple[str, ...] = tuple(name for name, _ in per_class)
            entries = [(f, label) for label, (_, files) in enumerate(per_class) for f in files]
        else:
            self.class_names = ()
            entries = [(f, -1) for f in sorted(p for p in self.root.iterdir() if _is_image(p))]
        if not entries:
            raise UserError(
                f"No images in {self.root} ({', '.join(IMAGE_EXTENSIONS)}), neither directly in it nor in "
                "class subfolders."
            )
        # Files whose header cannot be read are skipped (and counted) instead of failing mid-run.
        self.unreadable = [f for f, _ in entries if not _readable_header(f)]
        if self.unreadable:
            skipped = set(self.unreadable)
            entries = [(f, label) for f, label in entries if f not in skipped]
            if not entries:
                raise UserError(f"None of the {len(skipped)} images in {self.root} can be read.")
        self._undecodable: set[Path] = set()

        scores = [_heldout_score(f.relative_to(self.root).as_posix()) for f, _ in entries]
        held = {i for i, s in enumerate(scores) if s < heldout_fraction}
        if not held and len(entries) > 1 and heldout_fraction > 0:
            held = {min(range(len(entries)), key=scores.__getitem__)}
        self.heldout_files = [entries[i][0] for i in sorted(held)]
        self.samples: list[tuple[Path, int]] = [e for i, e in enumerate(entries) if (i in held) != train]
        if not self.samples:
            split = "training" if train else "held-out"
            raise UserError(f"The {split} split of {self.root} is empty; the folder needs more images.")
        self.labels = [label for _, label in self.samples]

        if train:
            self.epoch_len = int(epoch_len) if epoch_len else len(self.samples)
            self._items = None
        else:
            items = []
            for idx, (path, _) in enumerate(self.samples):
                valid = _valid_scales(*_image_size(path), self.size, self.scales) or (1,)
                items += [(idx, s) for s in valid]
            self._items = items
            self.epoch_len = len(items)

    @property
    def conditional(self) -> bool:
        return bool(self.class_names)

    def __len__(self) -> int:
        return self.epoch_len

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        if index < 0:
            raise IndexError(index)
        if not self.train:
            idx, scale = self._items[index % len(self._items)]
            path, label = self.samples[idx]
            return self._crop(load_rgb(path), scale, 0.5, 0.5, False), label

        path, label = self.samples[index % len(self.samples)]
        rng = _item_rng(self.seed, index)
        scale_pick, y_pick, x_pick, flip = rng.random(4)
        im = self._decode(index)
        valid = _valid_scales(*im.size, self.size, self.scales) or (1,)
        scale = valid[int(scale_pick * len(valid))]
        return self._crop(im, scale, y_pick, x_pick, self.hflip and flip < 0.5), label

    def _decode(self, index: int) -> Image.Image:
        """The item's image; a file whose data turns out damaged is reported once and replaced by
        the next readable file (the header was fine, so only decoding finds it)."""
        for offset in range(len(self.samples)):
            path = self.samples[(index + offset) % len(self.samples)][0]
            if path in self._undecodable:
                continue
            try:
                return load_rgb(path)
            except (OSError, ValueError, UserError) as error:
                self._undecodable.add(path)
                log.warning("skipping %s: it cannot be decoded (%s)", path, error)
        raise UserError(f"none of the training images in {self.root} can be decoded")

    def _crop(self, im: Image.Image, scale: int, y_pick: float, x_pick: float, flip: bool) -> torch.Tensor:
        size = self.size
        if min(im.size) < size:
            im, scale = _downscale(im, 1, size), 1
        w, h = im.width // scale, im.height // scale
        x, y = int(x_pick * (w - size + 1)), int(y_pick * (h - size + 1))
        # Cropping first and reducing after equals reducing the whole image and cropping, since
        # the box lies on the scale x scale grid; it saves reducing pixels that are thrown away.
        box = im.crop((x * scale, y * scale, (x + size) * scale, (y + size) * scale))
        arr = np.asarray(box.reduce(scale) if scale > 1 else box)
        return _to_tensor(arr, flip)


# ---------------------------------------------------------------------------------- fashion-mnist
_IDX_DTYPES = {0x08: np.uint8}


def _read_idx(path: Path, hint: str) -> np.ndarray:
    """Read an idx file (as in MNIST; gzip-compressed when the name ends in .gz); every problem is a
    DataSourceError that ends with `hint` (what to do)."""
    try:  # bounded: a small gzip file can inflate to gigabytes
        if path.suffix == ".gz":
            data = read_gzip(path, "training data", hint=hint)
        else:
            data = read_bytes(path, "training data", MAX_GZIP_INFLATED_BYTES)
    except UserError as error:
        raise DataSourceError(str(error)) from None
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in _IDX_DTYPES:
        raise DataSourceError(f"{printable(path)} is not an idx file of unsigned bytes (it starts with "
                              f"{data[:4].hex(' ') or 'nothing'}); {hint}")
    ndim = data[3]
    if not 1 <= ndim <= 4 or len(data) < 4 + 4 * ndim:
        raise DataSourceError(f"{printable(path)} is damaged: its header is cut short or names {ndim} "
                              f"dimensions; {hint}")
    shape = struct.unpack(f">{ndim}I", data[4 : 4 + 4 * ndim])
    body = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim)
    if body.size != math.prod(shape):
        raise DataSourceError(f"{printable(path)} is damaged: it holds {body.size} values, but its header "
                              f"announces {'×'.join(map(str, shape))} = {math.prod(shape)}; {hint}")
    return body.reshape(shape)


FASHION_MNIST_SIDE = 28


def _check_fashion_mnist(images: np.ndarray, labels: np.ndarray, names: tuple[Path, Path],
                         hint: str) -> None:
    """The images and labels of one split are Fashion-MNIST's: 28×28 images, one label per image,
    each label one of its classes, at least one image."""
    image_file, label_file = (printable(name) for name in names)
    side = FASHION_MNIST_SIDE
    if images.ndim != 3 or images.shape[1:] != (side, side):
        raise DataSourceError(f"{image_file} holds images of shape {'×'.join(map(str, images.shape[1:]))}, "
                              f"not Fashion-MNIST's {side}×{side}; {hint}")
    if labels.ndim != 1:
        raise DataSourceError(f"{label_file} holds {labels.ndim}-dimensional labels, not one label per "
                              f"image; {hint}")
    if images.shape[0] != labels.shape[0]:
        raise DataSourceError(f"{image_file} holds {images.shape[0]} images but {label_file} "
                              f"{labels.shape[0]} labels; {hint.replace('it ', 'them ', 1)}")
    if not len(labels):
        raise DataSourceError(f"{image_file} holds no images; {hint}")
    classes = len(FASHION_MNIST_CLASSES)
    if int(labels.max()) >= classes:
        raise DataSourceError(f"{label_file} holds label {int(labels.max())}; Fashion-MNIST's are 0 to "
                              f"{classes - 1}; {hint}")


def _idx_file(root: Path, name: str) -> Path:
    for candidate in (root / name, root / name.removesuffix(".gz")):
        if os.path.lexists(candidate):  # a pipe or a folder there is refused by the reader, in words
            return candidate
    raise DataSourceError(f"Fashion-MNIST file {name} is not in {root}.")


def fashion_mnist(
    split: str = "train",
    root: str | os.PathLike | None = None,
    cache_dir: str | os.PathLike | None = None,
    download: bool = True,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Fashion-MNIST as (images uint8 [N, 3, 32, 32], labels int64 [N]); N = 60000 train, 10000 test.

    The 28x28 images are padded by 2 pixels of background (0) on each side and repeated over the
    three channels; clothes are bright on black, as in the original. `root` is a folder holding the
    four idx files (.gz or not); without it they come from the cache (`ensure_fashion_mnist`,
    fetching Debian's dataset-fashion-mnist when missing and `download`).
    """
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', not {split!r}")
    if root is None:
        if download:
            root = ensure_fashion_mnist(cache_dir)
        else:
            package, path = FASHION_MNIST_FILES[0]
            root = package_dir(package, cache_dir) / Path(path).parent
        hint = "delete it and run the command again: Fashion-MNIST is fetched anew"
    else:
        hint = "replace it with Fashion-MNIST's original file"
    root = Path(root)
    prefix = "train" if split == "train" else "t10k"
    names = (_idx_file(root, f"{prefix}-images-idx3-ubyte.gz"),
             _idx_file(root, f"{prefix}-labels-idx1-ubyte.gz"))
    images, labels = (_read_idx(name, hint) for name in names)
    _check_fashion_mnist(images, labels, names, hint)
    padded = np.zeros((images.shape[0], images.shape[1] + 4, images.shape[2] + 4), dtype=np.uint8)
    padded[:, 2:-2, 2:-2] = images
    x = torch.from_numpy(padded).unsqueeze(1).repeat(1, 3, 1, 1)
    return x, torch.from_numpy(labels.astype(np.int64))


class FashionMNIST(Dataset):
    """Fashion-MNIST as a dataset of (uint8 [3, 32, 32], class index); see `fashion_mnist`.

    `hflip` flips an item with probability 1/2, drawn from (seed, index); an index past the length
    is the same image in a later epoch.
    """

    epoch_indexed = True
    class_names = FASHION_MNIST_CLASSES

    def __init__(
        self,
        split: str = "train",
        root: str | os.PathLike | None = None,
        cache_dir: str | os.PathLike | None = None,
        hflip: bool = False,
        seed: int = 0,
    ):
        self.images, self.labels = fashion_mnist(split, root=root, cache_dir=cache_dir)
        self.hflip = hflip
        self.seed = int(seed)

    def __len__(self) -> int:
        return self.labels.shape[0]

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        if index < 0:
            raise IndexError(index)
        i = index % len(self)
        img = self.images[i]
        if self.hflip and _item_rng(self.seed, index).random() < 0.5:
            img = img.flip(-1)
        return img, int(self.labels[i])
