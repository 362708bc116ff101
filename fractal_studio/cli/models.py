"""`fractal-studio models list|get|remove`: the published models in one step, and what is installed."""

from __future__ import annotations

from fractal_studio.cli.output import Progress, duration
from fractal_studio.untrusted import printable


def add_parser(subparsers, name: str) -> None:
    parser = subparsers.add_parser(name, help="list, download or remove models (the paper's published ones)",
                                   description="Install the checkpoints published with the paper "
                                               "(downloaded, then converted) or any checkpoint by its link.")
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    actions.add_parser("list", help="the published models and what is installed",
                       description="The published models, then the installed ones and their folder.")
    get = actions.add_parser("get", help="download and convert a model",
                             description="Download a published model by name, or a checkpoint by its "
                                         "http(s) link (a mirror, a private model), and convert it. An "
                                         "interrupted download resumes where it stopped.")
    get.add_argument("model", metavar="NAME|URL", help="a published model's name or a checkpoint's link")
    get.add_argument("--config", help="preset name or config.json (needed for a checkpoint whose own "
                                      "arguments do not name a published preset)")
    get.add_argument("--name", help="install under this name (default: the published name, else the "
                                    "link's file name)")
    get.add_argument("--keep-checkpoint", action="store_true",
                     help="keep the downloaded .pth next to the converted model")
    remove = actions.add_parser("remove", help="delete an installed model",
                                description="Delete an installed model, with any partial download.")
    remove.add_argument("model", metavar="NAME", help="the installed model's name")
    parser.set_defaults(run=run)


def run(args) -> int:
    return {"list": list_models, "get": get_model, "remove": remove_model}[args.action](args)


def list_models(args) -> int:
    from fractal_studio.model.download import ENV_VAR, installed_models, models_dir, partial_downloads
    from fractal_studio.model.published import LICENCE_NOTE, PAPER, PUBLISHED, format_bytes, format_parameters

    folder = models_dir()
    installed = installed_models(folder)
    installed_names = {model.name for model in installed}
    print(f"Published models ({PAPER}), each trained on ImageNet (1000 classes):")
    for entry in PUBLISHED.values():
        mark = "installed" if entry.name in installed_names else ""
        print(f"  {entry.name:<24} {entry.title:<23} {format_bytes(entry.download_bytes):>7} download, "
              f"{format_parameters(entry.parameters):>4} parameters, FID {entry.fid:5.2f}  {mark}".rstrip())
        print(f"  {'':<24} {entry.purpose}")
    print(f"Licence: {LICENCE_NOTE}")
    print()
    print(f"Installed in {folder} (set {ENV_VAR} to use another folder):")
    for model in installed:  # names of files in the folder: no escape sequence reaches the terminal
        print(f"  {printable(model.name):<24} {format_bytes(model.size):>7}  {printable(model.path)}")
    for name, size in partial_downloads(folder).items():
        name = printable(name)
        print(f"  {name:<24} {format_bytes(size):>7}  partly downloaded: `fractal-studio models get {name}` "
              f"resumes it")
    if not installed:
        print("  none yet: `fractal-studio models get NAME` installs one")
    return 0


def get_model(args) -> int:
    from fractal_studio.model import download

    line = DownloadLine(args.quiet, download.installed_name(args.model, args.config, args.name))
    stopped = None  # the progress line is cleared however it ends
    try:
        path = download.get_model(args.model, config=args.config, keep_checkpoint=args.keep_checkpoint,
                                  progress=line.update, name=args.name)
    except KeyboardInterrupt:  # Ctrl+C or SIGTERM: what was downloaded stays for the next run
        stopped = "stopped; the same command resumes the download"
        raise
    finally:
        line.done(stopped)
    print(path)
    return 0


def remove_model(args) -> int:
    from fractal_studio.model.download import remove_model

    for path in remove_model(args.model):
        print(f"removed {path}")
    return 0


class DownloadLine(Progress):
    """The installation's progress on the command's progress line (cli/output.py)."""

    def __init__(self, quiet: bool, what: str, stream=None):
        super().__init__(quiet, stream)
        self.what = what

    def update(self, event) -> None:
        if event.stage == "convert":
            if event.total is None:
                self.step(None, f"converting {self.what} to .safetensors…", new_stage=True)
            return
        self.step(event.fraction if event.total else None, self._download_text(event))

    def _download_text(self, event) -> str:
        from fractal_studio.model.published import format_bytes

        done = format_bytes(event.done)
        amount = f"{done} of {format_bytes(event.total)}" if event.total else done
        left = "" if event.seconds_left is None else f", {duration(event.seconds_left)} left"
        return f"downloading {self.what}: {amount}, {format_bytes(event.speed)}/s{left}"
