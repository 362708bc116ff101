"""A small client of the server's API on the standard library only (the tests, the load benchmark
and scripts use it; any HTTP client works the same).

    client = Client("127.0.0.1", 7860, token=None)
    answer = client.post("/api/v1/inpaint", files={"image": png, "mask": mask_png},
                         fields={"options": json.dumps({"seed": 1})})
    answer.status, answer.headers, answer.body, answer.json()
"""

from __future__ import annotations

import http.client
import json
import secrets
from collections.abc import Iterator
from dataclasses import dataclass


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self):
        return json.loads(self.body)


def multipart(fields: dict[str, str] | None = None,
              files: dict[str, bytes] | None = None) -> tuple[bytes, str]:
    """(body, content type) of a multipart/form-data request."""
    boundary = "fractal-studio-" + secrets.token_hex(12)
    parts = []
    for name, value in (fields or {}).items():
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'.encode()
                     + value.encode() + b"\r\n")
    for name, data in (files or {}).items():
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; filename="{name}.png"'
                     f'\r\nContent-Type: application/octet-stream\r\n\r\n'.encode() + data + b"\r\n")
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


class Client:
    def __init__(self, host: str, port: int, token: str | None = None, timeout: float = 60.0):
        self.host, self.port, self.token, self.timeout = host, port, token, timeout

    def connection(self) -> http.client.HTTPConnection:
        return http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)

    def headers(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        headers = {} if self.token is None else {"Authorization": f"Bearer {self.token}"}
        headers.update(extra or {})
        return headers

    def request(self, method: str, path: str, body: bytes | None = None,
                headers: dict[str, str] | None = None) -> Answer:
        connection = self.connection()
        try:
            connection.request(method, path, body=body, headers=self.headers(headers))
            response = connection.getresponse()
            return Answer(response.status, {k.lower(): v for k, v in response.getheaders()}, response.read())
        finally:
            connection.close()

    def get(self, path: str, headers: dict[str, str] | None = None) -> Answer:
        return self.request("GET", path, headers=headers)

    def delete(self, path: str) -> Answer:
        return self.request("DELETE", path)

    def post(self, path: str, fields: dict[str, str] | None = None, files: dict[str, bytes] | None = None,
             headers: dict[str, str] | None = None) -> Answer:
        body, kind = multipart(fields, files)
        return self.request("POST", path, body, {"Content-Type": kind, **(headers or {})})

    def events(self, path: str) -> Iterator[tuple[str, dict]]:
        """(event, data) of a server-sent event stream, until the server ends it."""
        connection = self.connection()
        try:
            connection.request("GET", path, headers=self.headers())
            response = connection.getresponse()
            if response.status != 200:
                raise RuntimeError(f"{path}: {response.status} {response.read()[:200]!r}")
            name, data = None, []
            while line := response.readline():
                line = line.decode().rstrip("\r\n")
                if line.startswith("event: "):
                    name = line[7:]
                elif line.startswith("data: "):
                    data.append(line[6:])
                elif not line and name is not None:
                    yield name, json.loads("\n".join(data))
                    name, data = None, []
        finally:
            connection.close()
