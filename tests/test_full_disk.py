"""A full disk while writing (#33): a training checkpoint, an edit's result, a converted model. Each
is one line and exit 2; the files from before (the last checkpoint and its state, the old result)
are exactly as they were, and no partial file is left under any name. The disk "fills" after a given
number of bytes: the files that the writes go through (fractal_studio/files.py) raise ENOSPC there,
as a real full disk does, after writing what still fits."""

from __future__ import annotations

import errno
import os
import shutil

import pytest

from fractal_studio import files
from fractal_studio.cli.main import main
from fractal_studio.training.options import state_path

from .test_hostile_inputs import edit, snapshot, world  # noqa: F401 (world is a fixture)
from .training.test_train import make_folder


class _Filling:
    """A file that takes `room` more bytes of the shared budget, then raises ENOSPC."""

    def __init__(self, file, disk):
        self.file, self.disk = file, disk

    def write(self, data):
        data = memoryview(data).cast("B")
        if len(data) > self.disk.room:
            self.file.write(data[:self.disk.room])
            self.disk.room = 0
            raise OSError(errno.ENOSPC, "No space left on device")
        self.disk.room -= len(data)
        return self.file.write(data)

    def __getattr__(self, name):
        return getattr(self.file, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.file.close()


class _FullDiskOS:
    """The os module as fractal_studio.files sees it, with a disk that holds `room` more bytes."""

    def __init__(self, room):
        self.room = room

    def fdopen(self, fd, *args, **kwargs):
        return _Filling(os.fdopen(fd, *args, **kwargs), self)

    def __getattr__(self, name):
        return getattr(os, name)


@pytest.fixture
def disk(monkeypatch):
    def fill_after(room: int) -> _FullDiskOS:
        full = _FullDiskOS(room)
        monkeypatch.setattr(files, "os", full)
        return full
    return fill_after


def train_argv(folder, out) -> list[str]:
    return ["train", "--data", str(folder), "--preset", "tiny_mar_in16", "--out", str(out),
            "--batch-size", "3", "--eval-count", "2"]


def one_line(capsys) -> str:
    """The error: one line, the last one (a run's progress lines may come before it), no traceback."""
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.endswith("\n"), err
    last = err.splitlines()[-1]
    assert last.startswith("fractal-studio: error: "), err
    return last


# --------------------------------------------------------------------------------- training
@pytest.mark.parametrize("fills", ["in the model file", "in the state, the model file written"])
def test_a_full_disk_at_a_checkpoint_keeps_the_last_one(fills, tmp_path, capsys, disk):
    folder = make_folder(tmp_path / "data", per_class=2)
    out = tmp_path / "run" / "m.safetensors"
    out.parent.mkdir()
    argv = train_argv(folder, out)
    assert main([*argv, "--steps", "2"]) == 0
    capsys.readouterr()
    before = snapshot(tmp_path / "run")
    assert set(before) == {str(out), str(state_path(out))}
    disk(1000 if fills == "in the model file" else out.stat().st_size + 1000)
    assert main([*argv, "--steps", "3", "--resume"]) == 2
    err = one_line(capsys)
    assert "could not write the checkpoint at step 3" in err and "the disk is full" in err, err
    assert "the previous checkpoint is intact (no partial file is left)" in err and "--resume" in err
    assert snapshot(tmp_path / "run") == before  # both files as step 2 left them; no temporary file


def test_after_a_full_disk_the_run_resumes_from_the_last_checkpoint(tmp_path, capsys, disk, monkeypatch):
    folder = make_folder(tmp_path / "data", per_class=2)
    out = tmp_path / "m.safetensors"
    argv = train_argv(folder, out)
    assert main([*argv, "--steps", "2"]) == 0
    disk(out.stat().st_size + 10)
    assert main([*argv, "--steps", "3", "--resume"]) == 2
    monkeypatch.undo()  # room again
    capsys.readouterr()
    assert main([*argv, "--steps", "3", "--resume"]) == 0
    assert "resumed from" in capsys.readouterr().err


def test_the_first_checkpoint_on_a_full_disk_leaves_nothing(tmp_path, capsys, disk):
    folder = make_folder(tmp_path / "data", per_class=2)
    out = tmp_path / "run" / "m.safetensors"
    out.parent.mkdir()
    disk(5000)
    assert main([*train_argv(folder, out), "--steps", "2"]) == 2
    err = one_line(capsys)
    assert "could not write the checkpoint at step 2" in err and "nothing was written" in err, err
    assert os.listdir(out.parent) == []


# ---------------------------------------------------------------------------------- outputs
def test_a_full_disk_while_saving_an_edit_keeps_the_old_result(world, capsys, disk, monkeypatch):  # noqa: F811
    monkeypatch.chdir(world)
    result = world / "o.png"
    shutil.copy(world / "image.png", result)  # an earlier result, to be replaced with --overwrite
    argv = [part.format(image=world / "image.png", mask=world / "mask.png", model=world / "model.safetensors",
                        dir=world) for part in edit()]
    before = snapshot(world)
    disk(100)
    assert main([*argv, "--overwrite"]) == 2
    err = one_line(capsys)
    assert f"could not save {result}: no space left on device" in err and "nothing was written" in err, err
    assert snapshot(world) == before


def test_a_full_disk_while_converting_keeps_the_old_model(world, capsys, disk):  # noqa: F811
    destination = world / "d.safetensors"
    shutil.copy(world / "model.safetensors", destination)
    before = snapshot(world)
    disk(2000)
    assert main(["convert", str(world / "ckpt.pth"), str(destination), "--config", "tiny_mar_in16",
                 "--overwrite"]) == 2
    err = one_line(capsys)
    assert f"could not write {destination}: No space left on device" in err, err
    assert snapshot(world) == before
