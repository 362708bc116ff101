"""A local HTTP server for the download tests: files (with or without Range support), connections that
drop half-way, redirects, web pages and errors, and hostile servers (a byte at a time, a stall after the
headers, always the wrong range), on 127.0.0.1 in a thread. No test touches the internet."""

from __future__ import annotations

import re
import socket
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from .conftest import REFERENCE

# The authors' tiny FractalMAR checkpoint, served as a published model would be.
TINY = REFERENCE / "tiny_fractalmar"
CONFIG = str(TINY / "config.json")
DATA = (TINY / "checkpoint-last.pth").read_bytes()


@dataclass
class Route:
    status: int = 200
    body: bytes = b""
    content_type: str = "application/octet-stream"
    ranges: bool = True  # honours `Range: bytes=N-`; False answers 200 with the whole file
    drop_at: int | None = None  # the first request sends this many bytes, then the connection closes
    length: bool = True  # sends Content-Length
    location: str | None = None  # for redirects
    delay: float = 0.0  # seconds between 16 KiB pieces: a slow server
    byte_delay: float = 0.0  # seconds between single bytes of the body: a trickle
    header_delay: float = 0.0  # seconds between single bytes of the status line and headers
    stall: bool = False  # sends the headers, then nothing until the server closes
    wrong_range: bool = False  # always answers 206 with a range one byte past the one asked for
    hits: int = 0


class CheckpointServer:
    def __init__(self):
        self.routes: dict[str, Route] = {}
        self.requests: list[tuple[str, str | None]] = []  # (path, Range header) of every GET
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self.httpd.owner = self
        self.closing = threading.Event()  # ends the handlers that stall or trickle
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.02,), daemon=True)
        self.thread.start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}{path}"

    def file(self, path: str, body: bytes, **options) -> str:
        self.routes[path] = Route(body=body, **options)
        return self.url(path)

    def redirect(self, path: str, to: str, status: int = 302) -> str:
        self.routes[path] = Route(status=status, location=to)
        return self.url(path)

    def ranges(self, path: str) -> list[str | None]:
        return [header for requested, header in self.requests if requested == path]

    def close(self) -> None:
        self.closing.set()
        self.httpd.shutdown()
        self.httpd.server_close()


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        server: CheckpointServer = self.server.owner
        server.requests.append((self.path, self.headers.get("Range")))
        route = server.routes.get(self.path)
        if route is None:
            self.send_error(404)
            return
        route.hits += 1
        if route.location is not None:
            self.send_response(route.status)
            self.send_header("Location", route.location)
            self.send_header("Content-Length", "0")
            self.end_headers()
        elif route.status != 200:
            self.send_error(route.status)
        else:
            try:
                self._send_file(route)
            except (BrokenPipeError, ConnectionResetError):  # the client stopped reading: a test of that
                self.close_connection = True

    def _send_file(self, route: Route) -> None:
        server: CheckpointServer = self.server.owner
        if route.header_delay or route.byte_delay or route.stall or route.wrong_range:
            self._send_hostile(route, server.closing)
            return
        body, start = route.body, 0
        match = re.fullmatch(r"bytes=(\d+)-", self.headers.get("Range", ""))
        if match and route.ranges:
            start = int(match.group(1))
            if start >= len(body):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(body)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
        else:
            self.send_response(200)
        self.send_header("Content-Type", route.content_type)
        if route.length:
            self.send_header("Content-Length", str(len(body) - start))
        self.end_headers()
        if route.drop_at is not None and route.hits == 1:
            self.wfile.write(body[start:route.drop_at])
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)  # the connection dies mid-file
            self.close_connection = True
            return
        if route.delay <= 0:
            self.wfile.write(body[start:])
            return
        for offset in range(start, len(body), 16 * 1024):
            self.wfile.write(body[offset:offset + 16 * 1024])
            self.wfile.flush()
            time.sleep(route.delay)

    def _send_hostile(self, route: Route, closing: threading.Event) -> None:
        body = route.body
        match = re.fullmatch(r"bytes=(\d+)-", self.headers.get("Range", ""))
        asked = int(match.group(1)) if match else 0
        if route.wrong_range:
            start = asked + 1
            head = (f"HTTP/1.1 206 Partial Content\r\n"
                    f"Content-Range: bytes {start}-{len(body) - 1}/{len(body)}\r\n"
                    f"Content-Length: {len(body) - start}\r\n")
        else:
            start = 0
            head = f"HTTP/1.1 200 OK\r\nContent-Length: {len(body)}\r\n"
        head = (head + "Content-Type: application/octet-stream\r\n\r\n").encode()
        self.close_connection = True
        for i in range(len(head)) if route.header_delay else ():
            self.wfile.write(head[i:i + 1])
            self.wfile.flush()
            if closing.wait(route.header_delay):
                return
        if not route.header_delay:
            self.wfile.write(head)
            self.wfile.flush()
        if route.stall:
            closing.wait()
            return
        if not route.byte_delay:
            self.wfile.write(body[start:])
            return
        for i in range(start, len(body)):
            self.wfile.write(body[i:i + 1])
            self.wfile.flush()
            if closing.wait(route.byte_delay):
                return

    def log_message(self, format, *args):  # quiet
        pass
