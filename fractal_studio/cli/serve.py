"""`fractal-studio serve`: the editing API over HTTP for other programs (server/app.py).

    fractal-studio serve                                  # http://127.0.0.1:7860, docs at /docs
    fractal-studio serve --host 0.0.0.0 --token SECRET    # beyond this machine: a token is required

Needs the optional extra: pip install "fractal-studio[server]" (FastAPI, uvicorn, python-multipart).
"""

from __future__ import annotations

import importlib.util
import ipaddress
import math
import os
import socket
import sys
import threading

from fractal_studio.cli import common
from fractal_studio.errors import UserError
from fractal_studio.untrusted import printable

DESCRIPTION = "serve the editing API over HTTP (inpaint, outpaint, uncrop, edit; jobs with live progress)"
TOKEN_VARIABLE = "FRACTAL_STUDIO_TOKEN"


def add_parser(subparsers, name: str) -> None:
    parser = subparsers.add_parser(name, help=DESCRIPTION, description=DESCRIPTION + ".")
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to listen on (default 127.0.0.1: this machine only; any other "
                             "needs --token)")
    parser.add_argument("--port", type=int, default=7860, help="port (default 7860; 0 picks a free one)")
    parser.add_argument("--token", help=f"every request must send 'Authorization: Bearer TOKEN' (default: "
                                        f"${TOKEN_VARIABLE}, else none)")
    parser.add_argument("--model", help="the default model (a request's options.model picks another)")
    parser.add_argument("--device", default="auto", help="auto|cpu|cuda|mps (default auto)")
    parser.add_argument("--threads", type=int, help="CPU threads for torch (default: torch's choice)")
    parser.add_argument("--queue", type=int, default=8,
                        help="edits that may wait for the worker; one more answers 503 (default 8)")
    parser.add_argument("--max-request-mb", type=float,
                        help="largest request body in MB (default: two of the largest image files the "
                             "CLI reads)")
    parser.add_argument("--cors-origin", action="append", default=[], metavar="ORIGIN",
                        help="allow browser pages from ORIGIN (e.g. http://localhost:3000) to call the "
                             "API; repeat for more (default: none)")
    parser.set_defaults(run=run)


def loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def run(args) -> int:
    token = args.token if args.token is not None else os.environ.get(TOKEN_VARIABLE) or None
    if token is not None and (len(token) < 8 or not token.isprintable() or " " in token):
        raise UserError("--token must be at least 8 printable characters without spaces")
    if not loopback(args.host) and token is None:
        raise UserError(f"listening on {printable(args.host)} lets other machines in: give --token (or "
                        f"${TOKEN_VARIABLE}) so that only clients that send it are served")
    if not 0 <= args.port <= 65535:
        raise UserError(f"--port must be between 0 and 65535, got {args.port}")
    if not 1 <= args.queue <= 10_000:
        raise UserError(f"--queue must be between 1 and 10000, got {args.queue}")
    common.check_threads(args.threads)
    missing = [name for name, modules in (("fastapi", ["fastapi"]), ("uvicorn", ["uvicorn"]),
                                          ("python-multipart", ["python_multipart", "multipart"]))
               if not any(importlib.util.find_spec(module) for module in modules)]
    if missing:
        raise UserError(f"the server needs its optional packages ({', '.join(missing)} missing): "
                        "pip install 'fractal-studio[server]'")
    from fractal_studio.server.app import MAX_REQUEST_BYTES, create_app
    from fractal_studio.server.jobs import Settings, Worker

    limit = args.max_request_mb
    if limit is not None and not (math.isfinite(limit) and 0 < limit * (1 << 20) and limit <= 1 << 20):
        raise UserError(f"--max-request-mb must be more than 0 and at most {1 << 20} (a terabyte), "
                        f"got {limit}")
    max_bytes = MAX_REQUEST_BYTES if limit is None else max(1, int(limit * (1 << 20)))
    model_path = common.resolve_model_path(args.model)
    sock = listen(args.host, args.port)
    worker = Worker(Settings(model=str(model_path), device=args.device, threads=args.threads),
                    queue_size=args.queue)
    try:
        worker.load(model_path)  # now: a bad model or device is one line before anything is served
        app = create_app(worker, token=token, cors=tuple(args.cors_origin), max_bytes=max_bytes)
        host, port = sock.getsockname()[:2]
        print(f"serving {model_path.stem} on http://{host}:{port} (API docs at http://{host}:{port}/docs)"
              f"{'; requests need the token' if token else ''}; Ctrl+C stops", file=sys.stderr)
        server = Server(app, sock)
        server.serve()
    finally:
        worker.close()
        sock.close()
    return 0


def listen(host: str, port: int) -> socket.socket:
    try:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        return socket.create_server((host, port), family=family, reuse_port=False)
    except OSError as error:
        raise UserError(f"cannot listen on {printable(host)}:{port}: {error.strerror or error}") from None


class Server:
    """uvicorn serving `app` on an open socket: `serve()` here, or `start()` in a thread (tests,
    benchmarks) and `close()`."""

    def __init__(self, app, sock: socket.socket):
        import uvicorn

        config = uvicorn.Config(app, log_level="warning", lifespan="off", timeout_graceful_shutdown=2,
                                access_log=False)
        self.server = uvicorn.Server(config)
        self.sock = sock
        self.thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return self.sock.getsockname()[1]

    def serve(self) -> None:
        self.server.run(sockets=[self.sock])

    def start(self) -> Server:
        self.thread = threading.Thread(target=self.serve, name="fractal-studio-server", daemon=True)
        self.thread.start()
        while not self.server.started:
            if not self.thread.is_alive():
                raise RuntimeError("the server stopped while starting")
            self.thread.join(0.01)
        return self

    def close(self) -> None:
        self.server.should_exit = True
        if self.thread is not None:
            self.thread.join(10)
