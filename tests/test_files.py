"""Atomic writes: permissions, and nothing half-written or left over after a failure."""

import os
import stat
import sys

import pytest

from fractal_studio.files import atomic_write

posix_only = pytest.mark.skipif(sys.platform == "win32", reason="POSIX permission bits")


@pytest.fixture
def umask_022():
    old = os.umask(0o022)
    yield
    os.umask(old)


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@posix_only
def test_new_files_follow_the_umask_and_private_ones_are_owner_only(tmp_path, umask_022):
    atomic_write(tmp_path / "shared.bin", lambda f: f.write(b"abc"))
    atomic_write(tmp_path / "private.bin", lambda f: f.write(b"xyz"), private=True)
    assert (tmp_path / "shared.bin").read_bytes() == b"abc"
    assert mode(tmp_path / "shared.bin") == 0o644
    assert mode(tmp_path / "private.bin") == 0o600


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary_file(tmp_path):
    target = tmp_path / "model.safetensors"
    target.write_bytes(b"old contents")

    def fails_half_way(f):
        f.write(b"new, partial")
        raise OSError(28, "No space left on device")

    with pytest.raises(OSError, match="No space"):
        atomic_write(target, fails_half_way)
    assert target.read_bytes() == b"old contents"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.safetensors"]


@posix_only
def test_saved_models_are_readable_by_others_like_any_new_file(tmp_path, umask_022):
    from fractal_studio.model.weights import load_model, save_model

    from .conftest import random_model

    model = random_model("tiny_mar_in16")
    save_model(model, tmp_path / "m.safetensors")
    assert mode(tmp_path / "m.safetensors") == 0o644
    assert load_model(tmp_path / "m.safetensors").config == model.config
