"""Entry point of `fractal-studio`. Without a command it starts the desktop app.

Each subcommand lives in its own module with `add_parser(subparsers)` and `run(args) -> int`;
modules are imported lazily so `--help` and `--version` stay fast.
"""

from __future__ import annotations

import argparse
import contextlib
import difflib
import importlib
import os
import signal
import sys

from fractal_studio import __version__
from fractal_studio.errors import UserError
from fractal_studio.untrusted import printable

# command name -> module under fractal_studio.cli
COMMANDS = {
    "gui": "gui",
    "convert": "convert",
    "info": "info",
    "likelihood": "likelihood",
    "surprise": "surprise",
    "models": "models",
    "train": "train",
    "inpaint": "edit_commands",
    "outpaint": "edit_commands",
    "uncrop": "edit_commands",
    "edit": "edit_commands",
    "generate": "edit_commands",
    "batch": "batch",
}


class OneLineParser(argparse.ArgumentParser):
    """Usage mistakes in one line, like every other error (argparse prints the whole usage first)."""

    def error(self, message: str):
        if "expected one argument" in message:  # e.g. --extend -1,0,0,0: argparse took it for an option
            message += "; a value that starts with '-' goes after '=' (e.g. --extend=-1,0,0,0)"
        self.exit(2, f"fractal-studio: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog="fractal-studio",
        description="Edit images with fractal generative models. Without a command, opens the app.",
    )
    parser.add_argument("--version", action="version", version=f"fractal-studio {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, module_name in COMMANDS.items():
        module = importlib.import_module(f"fractal_studio.cli.{module_name}")
        module.add_parser(subparsers, name)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and not argv[0].startswith("-") and argv[0] not in COMMANDS:
        if not os.path.exists(argv[0]):  # a typo of a command, not an image to open
            close = difflib.get_close_matches(argv[0], COMMANDS, n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            print(f"fractal-studio: error: {argv[0]!r} is neither a command nor an existing file; {hint}"
                  f"commands: {', '.join(COMMANDS)}", file=sys.stderr)
            return 2
        argv = ["gui", *argv]  # `fractal-studio photo.jpg` opens the photo in the app
    args = parser.parse_args(argv)
    if args.command is None:
        args = parser.parse_args(["gui", *argv])
    if args.command != "gui":
        stop_on_sigterm()
    try:
        return int(args.run(args) or 0)
    except UserError as error:
        # The message may quote a file's name or content: no escape sequence reaches the terminal.
        print(f"fractal-studio: error: {printable(error)}", file=sys.stderr)
        return 2
    except Terminated:
        print("fractal-studio: terminated; nothing half-written was left", file=sys.stderr)
        return 143
    except KeyboardInterrupt:
        print("fractal-studio: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # the reader went away (`fractal-studio models list | head`): stop quietly
        with contextlib.suppress(OSError):
            sys.stdout = open(os.devnull, "w")  # noqa: SIM115 (so that the exit flush cannot fail again)
        return 141


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised like Ctrl+C so that every `finally` and cleanup runs (no temporary file
    is left behind by a write that was under way)."""


def stop_on_sigterm() -> None:
    def handle(number, frame):
        raise Terminated

    with contextlib.suppress(ValueError):  # not the main thread: leave the default
        signal.signal(signal.SIGTERM, handle)


if __name__ == "__main__":
    sys.exit(main())
