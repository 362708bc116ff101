"""Atomic writes: permissions, and nothing half-written or left over after a failure."""

import errno
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


@posix_only
def test_replacing_a_file_keeps_its_permissions(tmp_path, umask_022):
    target = tmp_path / "secret.png"
    target.write_bytes(b"old")
    os.chmod(target, 0o600)
    atomic_write(target, lambda f: f.write(b"new"))
    assert target.read_bytes() == b"new" and mode(target) == 0o600
    os.chmod(target, 0o664)
    atomic_write(target, lambda f: f.write(b"newer"))
    assert mode(target) == 0o664


@posix_only
def test_a_symlink_is_written_through_not_replaced(tmp_path):
    real = tmp_path / "real.png"
    real.write_bytes(b"old")
    link = tmp_path / "link.png"
    link.symlink_to(real)
    atomic_write(link, lambda f: f.write(b"new"))
    assert link.is_symlink() and os.readlink(link) == str(real)
    assert real.read_bytes() == b"new"


def test_several_files_are_written_all_or_nothing(tmp_path):
    from fractal_studio.files import atomic_write_all

    first, second, third = (tmp_path / f"res-{k}.png" for k in (1, 2, 3))
    first.write_bytes(b"old 1")
    third.write_bytes(b"old 3")

    def disk_full(f):
        f.write(b"partial")
        raise OSError(28, "No space left on device")

    with pytest.raises(OSError, match="No space"):
        atomic_write_all([(first, lambda f: f.write(b"new 1")), (second, disk_full),
                          (third, lambda f: f.write(b"new 3"))])
    assert first.read_bytes() == b"old 1" and third.read_bytes() == b"old 3"
    assert not second.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["res-1.png", "res-3.png"]

    atomic_write_all([(first, lambda f: f.write(b"new 1")), (second, lambda f: f.write(b"new 2"))])
    assert first.read_bytes() == b"new 1" and second.read_bytes() == b"new 2"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["res-1.png", "res-2.png", "res-3.png"]


def replace_failing_on(target):
    """os.replace that fails (an I/O error) when it would put a new file at `target`; putting an
    old file back still works."""
    real_replace = os.replace

    def replace(src, dst):
        if str(dst) == str(target) and not str(src).endswith(".old"):
            raise OSError(5, "Input/output error")
        return real_replace(src, dst)

    return replace


def assert_a_failed_second_rename_puts_both_back(tmp_path, monkeypatch):
    import fractal_studio.files as files

    first, second = tmp_path / "a.png", tmp_path / "b.png"
    first.write_bytes(b"old a")
    second.write_bytes(b"old b")
    monkeypatch.setattr(files.os, "replace", replace_failing_on(second))
    with pytest.raises(OSError, match="Input/output"):
        files.atomic_write_all([(first, lambda f: f.write(b"new a")), (second, lambda f: f.write(b"new b"))])
    assert first.read_bytes() == b"old a" and second.read_bytes() == b"old b"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.png", "b.png"]


def test_a_failed_rename_puts_the_replaced_files_back(tmp_path, monkeypatch):
    assert_a_failed_second_rename_puts_both_back(tmp_path, monkeypatch)


def test_stale_temporary_files_of_dead_processes_are_removed(tmp_path):
    import subprocess

    target = tmp_path / "model.safetensors"
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = tmp_path / f".model.safetensors.{dead.pid}-0123abcd.tmp"
    stale.write_bytes(b"x" * 100)
    live = tmp_path / f".model.safetensors.{os.getppid()}-89abcdef.tmp"  # a running process's
    live.write_bytes(b"y")
    unrelated = tmp_path / ".model.safetensors.notes"
    unrelated.write_bytes(b"z")
    atomic_write(target, lambda f: f.write(b"data"))
    assert not stale.exists()
    assert live.exists() and unrelated.exists()


def test_a_hard_linked_file_is_written_in_place_so_every_name_sees_it(tmp_path, monkeypatch):
    import fractal_studio.files as files

    first, other = tmp_path / "photo.png", tmp_path / "same-photo.png"
    first.write_bytes(b"old")
    os.link(first, other)
    os.chmod(first, 0o640)
    inode = os.stat(first).st_ino
    atomic_write(first, lambda f: f.write(b"new content"))
    assert other.read_bytes() == b"new content" and os.stat(first).st_ino == inode
    assert os.stat(other).st_nlink == 2 and stat.S_IMODE(os.stat(first).st_mode) == 0o640
    assert sorted(p.name for p in tmp_path.iterdir()) == ["photo.png", "same-photo.png"]

    # A later file of the same all-or-nothing write fails: the linked file gets its content back.
    second = tmp_path / "b.png"
    second.write_bytes(b"old b")
    monkeypatch.setattr(files.os, "replace", replace_failing_on(second))
    with pytest.raises(OSError, match="Input/output"):
        files.atomic_write_all([(first, lambda f: f.write(b"newer")), (second, lambda f: f.write(b"new b"))])
    assert first.read_bytes() == other.read_bytes() == b"new content" and second.read_bytes() == b"old b"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b.png", "photo.png", "same-photo.png"]


LINK_REFUSALS = [(errno.EPERM, "Operation not permitted"),  # FAT, exFAT on Linux
                 (errno.EOPNOTSUPP, "Operation not supported"),  # SMB and FUSE file systems
                 (errno.EXDEV, "Invalid cross-device link"),  # union mounts
                 (errno.EMLINK, "Too many links"), (errno.EACCES, "Permission denied"),
                 (errno.ENOSYS, "Function not implemented")]


def refusing_links(code, message):
    calls = []

    def link(*args, **_kwargs):
        calls.append(args)
        raise OSError(code, message)

    return link, calls


@pytest.mark.parametrize(("code", "message"), LINK_REFUSALS)
def test_where_hard_links_are_refused_a_file_is_replaced_by_a_plain_rename(tmp_path, monkeypatch,
                                                                          code, message):
    """A single file needs nothing kept aside (a rename that fails leaves the old file): no link,
    and no copy either, which on a full stick would not fit."""
    import fractal_studio.files as files

    link, calls = refusing_links(code, message)
    monkeypatch.setattr(files.os, "link", link)
    monkeypatch.setattr(files, "_copy_aside", lambda *_: pytest.fail("copied a single file aside"))
    target = tmp_path / "model.safetensors"
    target.write_bytes(b"old")
    files.atomic_write(target, lambda f: f.write(b"new"))
    assert target.read_bytes() == b"new" and not calls
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.safetensors"]
    monkeypatch.setattr(files.os, "replace", replace_failing_on(target))
    with pytest.raises(OSError, match="Input/output"):
        files.atomic_write(target, lambda f: f.write(b"newer"))
    assert target.read_bytes() == b"new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.safetensors"]


@pytest.mark.parametrize(("code", "message"), LINK_REFUSALS)
def test_where_hard_links_are_refused_several_files_are_still_replaced_and_put_back(
        tmp_path, monkeypatch, code, message):
    """FAT and exFAT cards and many network shares refuse os.link: a file that may have to be put
    back (one written before another of the same all-or-nothing write) is copied aside instead."""
    import fractal_studio.files as files

    link, calls = refusing_links(code, message)
    monkeypatch.setattr(files.os, "link", link)
    first, second = tmp_path / "a.png", tmp_path / "b.png"
    first.write_bytes(b"old a")
    second.write_bytes(b"old b")
    files.atomic_write_all([(first, lambda f: f.write(b"new a")), (second, lambda f: f.write(b"new b"))])
    assert first.read_bytes() == b"new a" and second.read_bytes() == b"new b" and len(calls) == 1
    monkeypatch.setattr(files.os, "replace", replace_failing_on(second))
    with pytest.raises(OSError, match="Input/output"):
        files.atomic_write_all([(first, lambda f: f.write(b"newer a")),
                                (second, lambda f: f.write(b"newer b"))])
    assert first.read_bytes() == b"new a" and second.read_bytes() == b"new b"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.png", "b.png"]


def test_where_links_work_a_file_that_may_be_put_back_is_linked_aside_not_copied(tmp_path, monkeypatch):
    import fractal_studio.files as files

    monkeypatch.setattr(files, "_copy_aside", lambda *_: pytest.fail("copied instead of linking"))
    assert_a_failed_second_rename_puts_both_back(tmp_path, monkeypatch)


@posix_only
def test_where_the_file_system_refuses_a_mode_the_file_is_still_written(tmp_path, monkeypatch):
    """FAT and exFAT give every file one mode and refuse chmod to another (a private autosave)."""
    import fractal_studio.files as files

    def chmod(*_args, **_kwargs):
        raise PermissionError(errno.EPERM, "Operation not permitted")

    target = tmp_path / "autosave.png"
    target.write_bytes(b"old")
    monkeypatch.setattr(files.os, "chmod", chmod)
    files.atomic_write(target, lambda f: f.write(b"new"), private=True)
    assert target.read_bytes() == b"new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["autosave.png"]
