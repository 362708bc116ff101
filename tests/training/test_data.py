"""Training data: built-in source lists, photo crops, image folders, Fashion-MNIST and the loader.

Everything here runs offline on small synthetic files; nothing is downloaded.
"""

from __future__ import annotations

import gzip
import struct
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from fractal_studio.errors import UserError
from fractal_studio.training import data, fetch, sources
from fractal_studio.training.data import (
    FASHION_MNIST_CLASSES,
    HELDOUT_PHOTOS,
    PHOTO_FILES,
    FashionMNIST,
    ImageFolderDataset,
    PhotoCrops,
    fashion_mnist,
    heldout_crops,
    make_loader,
)
from fractal_studio.training.sources import DataSourceError


@pytest.fixture(autouse=True)
def no_downloads(monkeypatch, tmp_path):
    """Any attempt to run apt-get, dpkg-deb or pip fails the test; the cache points into tmp_path."""

    def forbidden(*args, **kwargs):
        raise AssertionError(f"unexpected subprocess call: {args}")

    monkeypatch.setattr(fetch.subprocess, "run", forbidden)
    monkeypatch.setenv(sources.DATA_ENV, str(tmp_path / "cache"))


def save(arr: np.ndarray, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(path)
    return path


def pattern_photo(path: Path, size: int = 1024) -> Path:
    """Red: a ramp that rises by 1 per pixel to the right (mod 256); green: a 1-pixel checkerboard."""
    y, x = np.mgrid[:size, :size]
    arr = np.zeros((size, size, 3), np.uint8)
    arr[..., 0] = x % 256
    arr[..., 1] = ((x + y) % 2) * 255
    arr[..., 2] = 60
    return save(arr, path)


def ramp_step(img: torch.Tensor) -> int:
    """The per-pixel step of the red ramp in a crop (the downscale factor), whatever the flip."""
    d = img[0].to(torch.int64).diff(dim=1).abs()
    return int(d[d < 128].median())  # leave out the wrap from 255 to 0


# ----------------------------------------------------------------------------- built-in sources
def test_photo_list_constant():
    assert len(PHOTO_FILES) >= 36
    assert len(set(PHOTO_FILES)) == len(PHOTO_FILES)
    assert len({sources.photo_key(e) for e in PHOTO_FILES}) == len(PHOTO_FILES)
    assert len(HELDOUT_PHOTOS) == 4
    assert set(HELDOUT_PHOTOS) <= set(PHOTO_FILES)
    assert len({package for package, _ in HELDOUT_PHOTOS}) == 4  # one per package
    for entry in PHOTO_FILES:
        package, path = entry
        assert package in sources.PACKAGES and package in sources.PACKAGE_LICENCES
        assert path.lower().endswith((".jpg", ".png")) and not path.startswith("/")
        assert sources.PHOTO_CREDITS[sources.photo_key(entry)]["licence"]
    assert set(sources.PHOTO_CREDITS) == {sources.photo_key(e) for e in PHOTO_FILES}
    assert f"{len(PHOTO_FILES)} photos" in sources.licence_summary()


def fill_cache(entries, cache: Path) -> None:
    """Lay out a cache as ensure_packages leaves it (files empty: only their presence matters)."""
    for package, path in entries:
        for p in [path, *sources.PACKAGES[package].licence_files]:
            f = cache / "packages" / package / p
            f.parent.mkdir(parents=True, exist_ok=True)
            f.touch()


def test_photo_files_splits_and_idempotent_ensure(tmp_path):
    cache = tmp_path / "cache"
    with pytest.raises(DataSourceError, match="ensure_photo_sources"):
        data.photo_files("train", download=False)
    fill_cache(PHOTO_FILES, cache)
    train, held = data.photo_files("train"), data.photo_files("heldout")  # nothing to fetch
    assert len(train) == len(PHOTO_FILES) - 4 and len(held) == 4
    assert not set(train) & set(held)
    assert all(p.is_file() and p.is_relative_to(cache) for p in train + held)
    logged = []
    everything = data.ensure_photo_sources(log=logged.append)
    assert everything == [cache / "packages" / package / path for package, path in PHOTO_FILES]
    assert set(everything) == set(train + held)
    assert not any(line.startswith("fetching") for line in logged)
    assert any("licences:" in line for line in logged)
    with pytest.raises(ValueError):
        data.photo_files("test")


def test_failed_apt_download_gives_clear_error(monkeypatch, tmp_path):
    def apt_fails(cmd, **kwargs):
        return subprocess.CompletedProcess(cmd, 100, "", "E: Unable to locate package mate-backgrounds")

    monkeypatch.setattr(fetch.subprocess, "run", apt_fails)
    with pytest.raises(DataSourceError, match=r"(?s)mate-backgrounds.*Unable to locate.*apt-get update"):
        fetch.ensure_packages([PHOTO_FILES[20]], log=lambda s: None)
    assert not list((tmp_path / "cache").glob(".fetch-*"))  # the scratch folder is cleaned up

    def no_program(cmd, **kwargs):
        raise FileNotFoundError(cmd[0])

    monkeypatch.setattr(fetch.subprocess, "run", no_program)
    with pytest.raises(DataSourceError, match="not installed"):
        fetch.ensure_packages([PHOTO_FILES[20]], log=lambda s: None)



def test_a_fetched_debian_package_lands_complete_in_the_cache(monkeypatch, tmp_path):
    """apt-get and dpkg-deb faked: the listed files and the licence file are placed, nothing else
    (no scratch folder, no temporary file), and a second call fetches nothing."""
    package, wanted = PHOTO_FILES[20]

    def fake_run(cmd, cwd=None, **kwargs):
        if cmd[:2] == ["apt-get", "download"]:
            (Path(cwd) / f"{package}_1.0_all.deb").write_bytes(b"deb")
        elif cmd[:2] == ["dpkg-deb", "-x"]:
            root = Path(cmd[3])
            for path in (wanted, *sources.PACKAGES[package].licence_files, "usr/share/other.jpg"):
                (root / path).parent.mkdir(parents=True, exist_ok=True)
                (root / path).write_bytes(path.encode())
        return subprocess.CompletedProcess(cmd, 0, "", "")

    monkeypatch.setattr(fetch.subprocess, "run", fake_run)
    [placed] = fetch.ensure_packages([(package, wanted)], log=lambda s: None)
    assert placed.read_bytes() == wanted.encode()
    kept = sorted(p.relative_to(sources.package_dir(package)).as_posix()
                  for p in sources.package_dir(package).rglob("*") if p.is_file())
    assert kept == sorted([wanted, *sources.PACKAGES[package].licence_files, ".fetched.json"])
    assert not list((tmp_path / "cache").glob(".fetch-*"))
    monkeypatch.setattr(fetch.subprocess, "run", lambda *a, **k: pytest.fail("fetched again"))
    assert fetch.ensure_packages([(package, wanted)], log=lambda s: None) == [placed]


# ---------------------------------------------------------------------------------- photo crops
@pytest.fixture
def photos(tmp_path):
    rng = np.random.default_rng(0)
    return [
        pattern_photo(tmp_path / "pattern.png"),
        save(rng.integers(0, 256, (300, 420, 3), dtype=np.uint8), tmp_path / "noise.jpg"),
    ]


def test_photo_crops_shapes_and_reproducibility(photos):
    ds = PhotoCrops(photos, size=64, scales=(1, 2, 4, 8), epoch_len=50, seed=3)
    assert len(ds) == 50
    img, label = ds[0]
    assert img.shape == (3, 64, 64) and img.dtype == torch.uint8 and label == -1
    again = PhotoCrops(photos, size=64, scales=(1, 2, 4, 8), epoch_len=50, seed=3)
    other = PhotoCrops(photos, size=64, scales=(1, 2, 4, 8), epoch_len=50, seed=4)
    same = [torch.equal(ds[i][0], again[i][0]) for i in range(20)]
    differ = [not torch.equal(ds[i][0], other[i][0]) for i in range(20)]
    assert all(same) and sum(differ) >= 15
    # an index past the length is the same item in a later epoch: other crops
    assert sum(not torch.equal(ds[i][0], ds[i + 50][0]) for i in range(20)) >= 15


def test_photo_crops_really_downscale(photos):
    ds = PhotoCrops(photos[:1], size=32, scales=(1, 2, 4, 8), epoch_len=200, seed=0)
    seen = set()
    for i in range(60):
        img, _, scale = ds.crop(i)
        seen.add(scale)
        assert ramp_step(img) == scale  # the ramp rises `scale` per pixel: the crop covers scale x more
        green = img[1].float()
        if scale == 1:
            assert (green.diff(dim=1).abs() == 255).all()  # the 1-pixel checkerboard is there
        else:
            assert green.std() < 1  # area filtering averaged it out to flat grey
    assert seen == {1, 2, 4, 8}
    flips = [bool(ds[i][0][0, 0, 0] > ds[i][0][0, 0, 1]) for i in range(60)]
    assert 10 < sum(flips) < 50  # about half are mirrored (the ramp then falls to the right)


def test_photo_crops_small_photos(tmp_path):
    rng = np.random.default_rng(1)
    mid = save(rng.integers(0, 256, (100, 150, 3), dtype=np.uint8), tmp_path / "mid.png")
    tiny = save(rng.integers(0, 256, (20, 30), dtype=np.uint8), tmp_path / "tiny.png")  # grey, < size
    ds = PhotoCrops([mid], size=64, scales=(1, 2, 4), epoch_len=10)
    assert {ds.crop(i)[2] for i in range(10)} == {1}  # only scale 1 holds a 64x64 crop
    ds = PhotoCrops([tiny], size=64, scales=(1, 2), epoch_len=3)
    assert ds[0][0].shape == (3, 64, 64)  # enlarged to fit, grey turned RGB
    with pytest.raises(ValueError):
        PhotoCrops([mid], scales=(0, 2))


def test_heldout_crops_are_fixed_and_balanced(photos):
    a = heldout_crops(photos, size=32, scales=(1, 2, 4), count=12, seed=7)
    b = heldout_crops(photos, size=32, scales=(1, 2, 4), count=12, seed=7)
    c = heldout_crops(photos, size=32, scales=(1, 2, 4), count=12, seed=8)
    assert a.shape == (12, 3, 32, 32) and a.dtype == torch.uint8
    assert torch.equal(a, b) and not torch.equal(a, c)
    # items 0, 2, 4, ... come from the pattern photo, at scales 1, 2, 4, 1, 2, 4
    assert [ramp_step(a[i]) for i in range(0, 12, 2)] == [1, 2, 4, 1, 2, 4]


# -------------------------------------------------------------------------------- image folders
def make_class_folder(root: Path, n_per_class: int = 6) -> dict[str, int]:
    """Classes whose images are filled with a class-specific red value; bird's are one level down."""
    values = {"cat": 10, "dog": 200, "bird": 90}
    for name, v in values.items():
        for i in range(n_per_class):
            arr = np.full((40, 48, 3), v, np.uint8)
            sub = root / name / ("sub" if name == "bird" else "") / f"{i}.png"
            save(arr, sub)
    (root / "stray.png").parent.mkdir(parents=True, exist_ok=True)
    save(np.zeros((40, 48, 3), np.uint8), root / "stray.png")  # ignored: not in a class folder
    (root / "notes.txt").write_text("not an image")
    return values


def test_class_folders_map_to_labels(tmp_path):
    values = make_class_folder(tmp_path / "set")
    train = ImageFolderDataset(tmp_path / "set", size=16, heldout_fraction=0.2)
    held = ImageFolderDataset(tmp_path / "set", size=16, heldout_fraction=0.2, train=False)
    assert train.class_names == held.class_names == ("bird", "cat", "dog") and train.conditional
    assert len(train.samples) + len(held.samples) == 18
    for ds in (train, held):
        for i in range(len(ds)):
            img, label = ds[i]
            assert img.shape == (3, 16, 16) and img.dtype == torch.uint8
            assert int(img[0, 0, 0]) == values[ds.class_names[label]]


def test_flat_folder_is_unconditional_and_heldout_split_is_stable(tmp_path):
    root = tmp_path / "flat"
    rng = np.random.default_rng(2)
    for i in range(200):
        save(rng.integers(0, 256, (12, 12, 3), dtype=np.uint8), root / f"img{i:03d}.png")
    train = ImageFolderDataset(root, size=8)
    held = ImageFolderDataset(root, size=8, train=False)
    assert train.class_names == () and not train.conditional
    assert train[0][1] == -1 and held[0][1] == -1
    train_files = {p for p, _ in train.samples}
    held_files = {p for p, _ in held.samples}
    assert not train_files & held_files and len(train_files | held_files) == 200
    assert 3 <= len(held_files) <= 20  # about 5 %
    assert set(train.heldout_files) == held_files
    # adding and removing other files moves nothing between splits
    save(np.zeros((12, 12, 3), np.uint8), root / "new.png")
    (root / "img000.png").unlink()
    again = ImageFolderDataset(root, size=8, train=False)
    assert {p for p, _ in again.samples} - {root / "new.png"} == held_files - {root / "img000.png"}


def test_folder_crops_train_random_heldout_centre(tmp_path):
    root = tmp_path / "one"
    pattern_photo(root / "a.png", size=256)
    pattern_photo(root / "b.png", size=256)
    # a small folder still gets one held-out file; the other trains
    train = ImageFolderDataset(root, size=32, scales=(1, 2, 4), epoch_len=40, seed=1)
    held = ImageFolderDataset(root, size=32, scales=(1, 2, 4), train=False)
    assert len(train.samples) == 1 and len(held.samples) == 1 and len(train) == 40
    assert len(held) == 3  # one centre crop per scale
    assert [ramp_step(held[i][0]) for i in range(3)] == [1, 2, 4]
    centre = held[0][0]  # scale 1: pixels 112..143 of the 256-pixel image
    assert int(centre[0, 0, 0]) == 112 and int(centre[0, 0, 31]) == 143
    assert {ramp_step(train[i][0]) for i in range(40)} == {1, 2, 4}
    again = ImageFolderDataset(root, size=32, scales=(1, 2, 4), epoch_len=40, seed=1)
    assert all(torch.equal(train[i][0], again[i][0]) for i in range(10))


def test_folder_decodes_any_mode_to_rgb(tmp_path):
    root = tmp_path / "modes"
    save(np.full((20, 20), 77, np.uint8), root / "grey.png")
    rgba = np.zeros((20, 20, 4), np.uint8)
    rgba[..., 0] = 255  # red, fully transparent: composited on white
    save(rgba, root / "alpha.png")
    save(np.full((20, 20, 3), 5, np.uint8), root / "c.jpg")
    ds = ImageFolderDataset(root, size=16, heldout_fraction=0.0)
    pixels = {p.name: ds._crop(data.load_rgb(p), 1, 0.5, 0.5, False)[:, 0, 0].tolist() for p, _ in ds.samples}
    assert pixels["grey.png"] == [77, 77, 77]
    assert pixels["alpha.png"] == [255, 255, 255]
    with pytest.raises(UserError, match="does not exist"):
        ImageFolderDataset(tmp_path / "missing", size=8)
    (tmp_path / "empty" / "sub").mkdir(parents=True)
    with pytest.raises(UserError, match="No images"):
        ImageFolderDataset(tmp_path / "empty", size=8)


# -------------------------------------------------------------------------------- fashion-mnist
def write_idx(path: Path, arr: np.ndarray, compress: bool = True) -> None:
    header = struct.pack(">BBBB", 0, 0, 0x08, arr.ndim) + struct.pack(f">{arr.ndim}I", *arr.shape)
    payload = header + arr.astype(np.uint8).tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    if compress:
        with gzip.open(path, "wb") as f:
            f.write(payload)
    else:
        path.write_bytes(payload)


def tiny_fashion(folder: Path, compress: bool = True) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(3)
    out = {}
    for prefix, n in (("train", 5), ("t10k", 3)):
        images = rng.integers(1, 256, (n, 28, 28), dtype=np.uint8)  # no 0 inside: padding stands out
        labels = rng.integers(0, 10, n, dtype=np.uint8)
        suffix = ".gz" if compress else ""
        write_idx(folder / f"{prefix}-images-idx3-ubyte{suffix}", images, compress)
        write_idx(folder / f"{prefix}-labels-idx1-ubyte{suffix}", labels, compress)
        out[prefix] = (images, labels)
    return out


@pytest.mark.parametrize("compress", [True, False])
def test_fashion_mnist_padding_and_labels(tmp_path, compress):
    truth = tiny_fashion(tmp_path / "fm", compress)
    x, y = fashion_mnist("train", root=tmp_path / "fm")
    assert x.shape == (5, 3, 32, 32) and x.dtype == torch.uint8
    assert y.dtype == torch.int64 and y.tolist() == truth["train"][1].tolist()
    images = torch.from_numpy(truth["train"][0])
    for c in range(3):
        assert torch.equal(x[:, c, 2:30, 2:30], images)
    border = torch.ones(32, 32, dtype=torch.bool)
    border[2:30, 2:30] = False
    assert (x[:, :, border] == 0).all()
    x, y = fashion_mnist("test", root=tmp_path / "fm")
    assert x.shape == (3, 3, 32, 32) and y.shape == (3,)
    assert len(FASHION_MNIST_CLASSES) == 10 and FASHION_MNIST_CLASSES[9] == "Ankle boot"


def test_fashion_mnist_from_cache_env(tmp_path):
    cache = tmp_path / "cache"  # $FRACTAL_STUDIO_DATA, set by the fixture
    fill_cache(data.FASHION_MNIST_FILES, cache)
    package, path = data.FASHION_MNIST_FILES[0]
    truth = tiny_fashion(cache / "packages" / package / Path(path).parent)
    x, y = fashion_mnist("test")  # everything present: no download
    assert x.shape == (3, 3, 32, 32) and y.tolist() == truth["t10k"][1].tolist()
    ds = FashionMNIST("train", hflip=True, seed=0)
    assert len(ds) == 5 and ds.class_names == FASHION_MNIST_CLASSES
    img, label = ds[1]
    assert img.shape == (3, 32, 32) and label == int(truth["train"][1][1])


def test_fashion_mnist_rejects_bad_files(tmp_path):
    tiny_fashion(tmp_path / "fm")
    (tmp_path / "fm" / "train-images-idx3-ubyte.gz").write_bytes(gzip.compress(b"\x00\x00\x0d\x03junk"))
    with pytest.raises(DataSourceError, match="not an idx file"):
        fashion_mnist("train", root=tmp_path / "fm")
    with pytest.raises(DataSourceError, match="not in"):
        fashion_mnist("train", root=tmp_path / "empty")


# --------------------------------------------------------------------------------------- loader
def test_loader_batches_epochs_and_seeds(photos):
    ds = PhotoCrops(photos, size=16, scales=(1, 2), epoch_len=24, seed=0)
    loader = make_loader(ds, batch_size=8, num_workers=0, seed=5)
    batches = list(loader)
    assert len(batches) == 3
    x, y = batches[0]
    assert x.shape == (8, 3, 16, 16) and x.dtype == torch.uint8
    assert y.dtype == torch.int64 and (y == -1).all()
    again = list(make_loader(ds, batch_size=8, num_workers=0, seed=5))
    assert all(torch.equal(a[0], b[0]) for a, b in zip(batches, again, strict=True))
    loader.sampler.set_epoch(1)
    epoch1 = list(loader)
    assert not torch.equal(torch.cat([b[0] for b in batches]), torch.cat([b[0] for b in epoch1]))


def test_loader_workers_and_labels(tmp_path):
    make_class_folder(tmp_path / "set", n_per_class=4)
    ds = ImageFolderDataset(tmp_path / "set", size=16, heldout_fraction=0.0, epoch_len=12)
    serial = list(make_loader(ds, batch_size=6, num_workers=0, seed=1))
    parallel = list(make_loader(ds, batch_size=6, num_workers=2, seed=1))
    for (xa, ya), (xb, yb) in zip(serial, parallel, strict=True):
        assert torch.equal(xa, xb) and torch.equal(ya, yb)  # the same items whichever process decodes
    assert set(torch.cat([y for _, y in serial]).tolist()) <= {0, 1, 2}


def test_distributed_loader_shards(photos):
    ds = PhotoCrops(photos, size=16, scales=(1,), epoch_len=20, seed=0)
    shards = []
    for rank in (0, 1):
        loader = make_loader(ds, 5, seed=0, distributed=True, num_replicas=2, rank=rank)
        shards.append(list(loader.sampler))
        assert len(list(loader)) == 2
    assert not set(shards[0]) & set(shards[1]) and len(shards[0]) == len(shards[1]) == 10
