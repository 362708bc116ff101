"""Entry point of `fractal-studio`. Without a command it starts the desktop app.

Each subcommand lives in its own module with `add_parser(subparsers)` and `run(args) -> int`;
modules are imported lazily so `--help` and `--version` stay fast.
"""

from __future__ import annotations

import argparse
import contextlib
import difflib
import importlib
import logging
import os
import platform
import signal
import sys

from fractal_studio import __version__, paths
from fractal_studio.cli import output
from fractal_studio.errors import UserError
from fractal_studio.untrusted import printable

log = logging.getLogger(__name__)

# command name -> module under fractal_studio.cli
COMMANDS = {
    "gui": "gui",
    "convert": "convert",
    "info": "info",
    "likelihood": "likelihood",
    "classify": "classify",
    "surprise": "surprise",
    "models": "models",
    "train": "train",
    "inpaint": "edit_commands",
    "outpaint": "edit_commands",
    "uncrop": "edit_commands",
    "edit": "edit_commands",
    "generate": "edit_commands",
    "install-desktop": "desktop",
    "batch": "batch",
    "serve": "serve",
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
    add_verbosity(parser)
    return parser


def add_verbosity(parser: argparse.ArgumentParser) -> None:
    """-v/--verbose and -q/--quiet on this parser and every (sub)command's, before or after the
    command's name (their values default to nothing, so a command's parser cannot reset them)."""
    taken = parser._option_string_actions
    if not {"-v", "--verbose"} & taken.keys():
        parser.add_argument("-v", "--verbose", action="count", default=argparse.SUPPRESS,
                            help="more detail on stderr (-vv: also from the libraries)")
    names = [name for name in ("-q", "--quiet") if name not in taken]
    if names:
        parser.add_argument(*names, dest="quiet", action="store_true", default=argparse.SUPPRESS,
                            help="no progress line and no notes: only warnings and errors")
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for subparser in dict.fromkeys(action.choices.values()):
                add_verbosity(subparser)


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
    args.verbose, args.quiet = getattr(args, "verbose", 0), bool(getattr(args, "quiet", False))
    if args.command != "gui":
        stop_on_sigterm()
    # The app's notes go to its log file (logs.py); its terminal, if any, shows warnings unless -v
    quiet = args.quiet or (args.command == "gui" and not args.verbose)
    console = output.start_console(args.verbose, quiet)
    try:
        return run_command(args)
    finally:
        output.stop_console(console)


def gui_main() -> int:
    """The `fractal-studio-gui` entry point ([project.gui-scripts]: no console window on Windows)."""
    return main(["gui", *sys.argv[1:]])


def run_command(args) -> int:
    log.debug("fractal-studio %s, Python %s on %s; settings in %s, data in %s, logs in %s", __version__,
              platform.python_version(), platform.platform(), paths.config_dir(), paths.data_dir(),
              paths.log_dir())
    with contextlib.suppress(OSError):  # what older versions wrote elsewhere, before anything reads it
        paths.migrate_old_folders()
    try:
        return int(args.run(args) or 0)
    except UserError as error:
        # The message may quote a file's name or content: no escape sequence reaches the terminal.
        return _fail(f"fractal-studio: error: {printable(error)}", 2)
    except Terminated:
        return _fail("fractal-studio: terminated; nothing half-written was left", 143)
    except KeyboardInterrupt:
        return _fail("fractal-studio: interrupted", 130)
    except BrokenPipeError:  # the reader went away (`fractal-studio models list | head`): stop quietly
        with contextlib.suppress(OSError):
            sys.stdout = open(os.devnull, "w")  # noqa: SIM115 (so that the exit flush cannot fail again)
        return 141


def _fail(message: str, code: int) -> int:
    output.Progress.clear_line(sys.stderr)  # a progress line left by the command is cleared first
    print(message, file=sys.stderr)
    return code


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
