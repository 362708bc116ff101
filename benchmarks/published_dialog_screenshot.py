"""Takes the README's picture of Model › Get published models… mid-download. A local server stands in
for the authors' host: it streams zeros at about 25 MB/s with FractalMAR-64's size, so the dialog shows
what a real download shows; it is cancelled after a few seconds (nothing is installed).

    .venv/bin/python benchmarks/published_dialog_screenshot.py [--out assets/published_models.png]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import threading
import time
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from _app import open_window, run_on_app_loop  # noqa: E402

NAME = "fractalmar_in64"
RATE = 25_000_000  # bytes per second


class Zeros(BaseHTTPRequestHandler):
    size = 0

    def do_GET(self):  # noqa: N802
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(self.size))
        self.end_headers()
        piece = bytes(1 << 18)
        try:
            for _ in range(0, self.size, len(piece)):
                self.wfile.write(piece)
                time.sleep(len(piece) / RATE)
        except (BrokenPipeError, ConnectionResetError):  # cancelled: the client hung up
            pass

    def log_message(self, *args):
        pass


async def scenario(window, out: str, seconds: float) -> None:
    dialog = window.show_published_models()
    dialog.start(NAME)
    await asyncio.sleep(seconds)
    dialog.grab().save(out)
    print(f"saved {out}: {dialog.progress_label.text()}")
    dialog.cancel()
    await dialog.task


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(ROOT / "assets" / "published_models.png"))
    parser.add_argument("--seconds", type=float, default=4.0)
    args = parser.parse_args()
    from fractal_studio.model import download, published

    entry = published.PUBLISHED[NAME]
    Zeros.size = entry.download_bytes
    server = ThreadingHTTPServer(("127.0.0.1", 0), Zeros)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/checkpoint-last.pth"
    published.PUBLISHED[NAME] = replace(entry, url=url)
    os.environ[download.ENV_VAR] = tempfile.mkdtemp(prefix="fractal-studio-screenshot-")
    window = open_window(1200, 800)
    run_on_app_loop(scenario(window, args.out, args.seconds))
    window.close()
    server.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
