"""The commands' stderr: one progress helper (a line in place on a terminal, plain lines elsewhere),
std logging for notes, -v/-q on every command."""

from __future__ import annotations

import argparse
import io
import logging
import os

import numpy as np
import pytest
from PIL import Image

from fractal_studio.cli import output
from fractal_studio.cli.main import build_parser, main
from fractal_studio.cli.models import DownloadLine
from fractal_studio.model.download import DownloadProgress


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture
def clock(monkeypatch):
    now = [1000.0]
    monkeypatch.setattr(output.time, "monotonic", lambda: now[0])
    return now


def test_off_a_terminal_progress_is_a_plain_line_per_tenth(clock):
    stream = io.StringIO()
    line = output.Progress(stream=stream)
    for k in range(101):
        line.step(k / 100, "surprise map", eta=100 - k)
    line.done()
    lines = stream.getvalue().splitlines()
    assert len(lines) == 11 and lines[0].startswith("[----") and "  0.0% surprise map ETA 1m40s" in lines[0]
    assert lines[-1].startswith("[" + "#" * 28 + "] 100.0%")
    assert "\r" not in stream.getvalue() and "\x1b" not in stream.getvalue()


def test_off_a_terminal_an_unknown_share_is_a_line_per_ten_seconds(clock):
    stream = io.StringIO()
    line = output.Progress(stream=stream)
    for k in range(30):
        line.step(None, f"downloading: {k} MB")
        clock[0] += 1
    line.step(None, "converting…", new_stage=True)
    assert stream.getvalue().splitlines() == ["downloading: 0 MB", "downloading: 10 MB", "downloading: 20 MB",
                                              "converting…"]


def test_on_a_terminal_one_line_rewrites_itself_cut_to_its_width_ten_times_a_second(clock, monkeypatch):
    monkeypatch.setattr(output.shutil, "get_terminal_size", lambda fallback: os.terminal_size((60, 24)))
    stream = Terminal()
    line = output.Progress(stream=stream)
    line.step(0.1, "window 1/2 level 0 step 1/8 and a long tail")
    clock[0] += 0.05
    line.step(0.2, "too soon: not drawn")
    clock[0] += 0.1
    line.step(0.3, "drawn")
    line.step(1.0, "the end is always drawn")
    line.done()
    text = stream.getvalue()
    assert "too soon" not in text and "30.0% drawn\x1b[K" in text and "the end is always dra\x1b[K" in text
    draws = text.split("\r")[1:]
    assert len(draws) == 4 and draws[-1] == "\x1b[K"  # three lines, then cleared
    assert all(len(draw.removesuffix("\x1b[K")) <= 59 for draw in draws)
    assert "\n" not in text


def test_a_log_line_clears_the_progress_line_first(clock, monkeypatch):
    terminal = Terminal()
    monkeypatch.setattr("sys.stderr", terminal)
    handler = output.start_console()
    try:
        line = output.Progress()
        line.step(0.5, "half")
        logging.getLogger("fractal_studio.test").info("a note")
        clock[0] += 1
        line.step(0.6, "more")
        line.done()
    finally:
        output.stop_console(handler)
    text = terminal.getvalue()
    assert text.index("half") < text.index("\r\x1b[Ka note\n") < text.index("more")


def test_quiet_progress_writes_nothing(clock):
    stream = Terminal()
    line = output.Progress(quiet=True, stream=stream)
    line.step(0.5, "half")
    line.done("finished")
    assert stream.getvalue() == ""


def test_the_download_line_is_the_same_helper(clock):
    stream = io.StringIO()
    line = DownloadLine(False, "fractalmar_in64", stream)
    for done in range(0, 101, 5):
        line.update(DownloadProgress("download", done * 10**6, 100 * 10**6, 2e6, (100 - done) / 2))
    line.update(DownloadProgress("convert", 0, None, 0, None))
    lines = stream.getvalue().splitlines()
    assert len(lines) == 12 and lines[-1] == "converting fractalmar_in64 to .safetensors…"
    assert lines[5].endswith("]  50.0% downloading fractalmar_in64: 50 MB of 100 MB, 2.0 MB/s, 25s left")


def parsers(parser: argparse.ArgumentParser, name="fractal-studio"):
    yield name, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub_name, sub in action.choices.items():
                yield from parsers(sub, f"{name} {sub_name}")


def test_every_command_takes_v_and_q():
    seen = list(parsers(build_parser()))
    assert len(seen) > 12
    for name, parser in seen:
        options = parser._option_string_actions
        assert {"-v", "--verbose", "-q", "--quiet"} <= options.keys(), name


def test_the_app_shows_only_warnings_on_its_terminal_unless_v(monkeypatch, capsys):
    from fractal_studio.app import main as app_main

    def launch(image=None, model=None):
        logging.getLogger("fractal_studio.app").info("a note for the log file")
        logging.getLogger("fractal_studio.app").warning("a warning")
        return 0

    monkeypatch.setattr(app_main, "launch", launch)
    assert main(["gui"]) == 0
    assert capsys.readouterr().err == "warning: a warning\n"
    assert main(["gui", "-v"]) == 0
    assert "a note for the log file" in capsys.readouterr().err


@pytest.fixture
def photo(tmp_path, converted):
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (24, 24, 3), dtype=np.uint8)).save(tmp_path / "photo.png")
    mask = np.zeros((24, 24), np.uint8)
    mask[8:14, 8:14] = 255
    Image.fromarray(mask).save(tmp_path / "mask.png")
    return tmp_path, str(converted["toy_cols"])


@pytest.mark.parametrize("where", ["before", "after"])
def test_q_silences_progress_and_notes_but_not_results(photo, capsys, where):
    folder, model = photo
    edit = ["inpaint", str(folder / "photo.png"), "--mask", str(folder / "mask.png"), "--model", model,
            "--iterations", "2,1", "--out", str(folder / "out.png"), "--overwrite"]
    assert main(edit) == 0
    shown = capsys.readouterr()
    assert shown.out == f"{folder / 'out.png'}\n"
    assert "inpaint: 1 file(s) in" in shown.err and "] 100.0% window" in shown.err  # stderr is no terminal
    assert "\r" not in shown.err
    assert main(["-q", *edit] if where == "before" else [*edit, "-q"]) == 0
    shown = capsys.readouterr()
    assert shown.out == f"{folder / 'out.png'}\n" and shown.err == ""


def test_v_shows_debug_lines_and_surprise_writes_no_carriage_return(photo, capsys):
    folder, model = photo
    logging.getLogger("fractal_studio.test").debug("not shown")  # no console outside a command
    args = ["surprise", str(folder / "photo.png"), "--model", model, "--out", str(folder / "map.png")]
    assert main([*args, "-v"]) == 0
    err = capsys.readouterr().err
    assert "surprise: mean" in err and "] 100.0% surprise map" in err and "\r" not in err
    assert "debug: fractal-studio 0.1.0, Python" in err and "not shown" not in err
    assert main(args + ["--overwrite"]) == 0
    assert "debug:" not in capsys.readouterr().err
