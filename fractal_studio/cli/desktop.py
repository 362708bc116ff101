"""`fractal-studio install-desktop [--uninstall]`: the app's menu entry, icon and AppStream metadata in
the user's XDG data folder (fractal_studio/desktop.py)."""

from __future__ import annotations

import logging

log = logging.getLogger(__name__)


def add_parser(subparsers, name: str) -> None:
    parser = subparsers.add_parser(
        name, help="add the app to the desktop's menu (its .desktop entry and icon)",
        description="Put Fractal Studio's desktop entry, icon and AppStream metadata in "
                    "$XDG_DATA_HOME (default ~/.local/share), so that the desktop's menu and launcher "
                    "show it; its entry starts this installation's app. Running it again updates "
                    "what changed.")
    parser.add_argument("--uninstall", action="store_true", help="remove them again")
    parser.set_defaults(run=run)


def run(args) -> int:
    from fractal_studio import desktop

    if args.uninstall:
        removed = desktop.uninstall()
        for path in removed:
            print(f"removed {path}")
        if not removed:
            log.info("the desktop entry was not installed in %s: nothing to remove", desktop.data_home())
        return 0
    written, unchanged = desktop.install()
    for path in written:
        print(path)
    entry = desktop.data_home() / "applications" / f"{desktop.DESKTOP_ID}.desktop"
    if written:
        log.info("installed the desktop entry %s (%d file(s) written, %d already in place)", entry,
                 len(written), len(unchanged))
    else:
        log.info("the desktop entry %s is already installed (%d files, all up to date)", entry,
                 len(unchanged))
    return 0
