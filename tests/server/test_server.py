"""`fractal-studio serve`: a real server on 127.0.0.1 (a free port, uvicorn in a thread), the toy
model, and clients over TCP."""

from __future__ import annotations

import io
import json
import socket
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from fractal_studio.cli.main import main
from fractal_studio.cli.serve import Server, listen
from fractal_studio.server import jobs as jobs_module
from fractal_studio.server.app import create_app
from fractal_studio.server.client import Client, multipart
from fractal_studio.server.jobs import Settings, Worker

from ..cli.test_cli_edit import png_header_only

FAST = {"iterations": "2,1"}
TOKEN = "a-test-token-1234"


def png(pixels: np.ndarray) -> bytes:
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, format="PNG")
    return out.getvalue()


def pixels_of(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


@pytest.fixture
def photo():
    pixels = np.random.default_rng(2).integers(0, 256, (28, 36, 3), dtype=np.uint8)
    hole = np.zeros((28, 36), bool)
    hole[6:14, 9:21] = True
    return {"pixels": pixels, "hole": hole, "image": png(pixels), "mask": png(hole.astype(np.uint8) * 255)}


class Running:
    """A server on a free port of 127.0.0.1 and a client for it."""

    def __init__(self, model, token=None, cors=(), queue_size=8, max_bytes=None):
        self.worker = Worker(Settings(model=str(model)), queue_size=queue_size)
        kwargs = {} if max_bytes is None else {"max_bytes": max_bytes}
        app = create_app(self.worker, token=token, cors=cors, **kwargs)
        self.server = Server(app, listen("127.0.0.1", 0)).start()
        self.client = Client("127.0.0.1", self.server.port, token=token, timeout=30)

    def close(self):
        self.server.close()
        self.worker.close()
        self.server.sock.close()


@pytest.fixture
def running(converted):
    server = Running(converted["toy_cols"])
    yield server
    server.close()


class Gate:
    """Holds the worker inside an edit (after its first event) until released; counts how many
    edits ran at once and keeps every job's cancel flag."""

    def __init__(self, monkeypatch):
        self.entered, self.release = threading.Event(), threading.Event()
        self.lock = threading.Lock()
        self.active = self.most = 0
        real = jobs_module.edit_image

        def gated(*args, **kwargs):
            events = real(*args, **kwargs)

            def run():
                with self.lock:
                    self.active += 1
                    self.most = max(self.most, self.active)
                try:
                    for index, event in enumerate(events):
                        yield event
                        if index == 0:
                            self.entered.set()
                            assert self.release.wait(20)
                finally:
                    with self.lock:
                        self.active -= 1
            return run()

        monkeypatch.setattr(jobs_module, "edit_image", gated)


def inpaint(client, photo, **options):
    return client.post("/api/v1/inpaint", files={"image": photo["image"], "mask": photo["mask"]},
                       fields={"options": json.dumps({**FAST, **options})})


def test_health_models_and_docs(running):
    health = running.client.get("/api/v1/health")
    assert health.status == 200 and health.json()["status"] == "ok" and health.json()["device"] == "cpu"
    models = running.client.get("/api/v1/models").json()
    assert any(m["name"] == "photo_64" and m["resolution"] == 64 for m in models)
    assert running.client.get("/docs").status == 200
    paths = running.client.get("/openapi.json").json()["paths"]
    assert {"/api/v1/inpaint", "/api/v1/jobs", "/api/v1/jobs/{job_id}/events"} <= set(paths)


def job_folders() -> set[Path]:
    return set(Path(tempfile.gettempdir()).glob("fractal-studio-job-*"))


def test_inpaint_is_the_cli_edit_and_keeps_known_pixels_bit_exact(running, photo, tmp_path, converted):
    before = job_folders()
    answer = inpaint(running.client, photo, seed=7)
    assert answer.status == 200 and answer.headers["content-type"] == "image/png"
    result, hole = pixels_of(answer.body), photo["hole"]
    assert np.array_equal(result[~hole], photo["pixels"][~hole])
    assert (result[hole] != photo["pixels"][hole]).any()
    record = Image.open(io.BytesIO(answer.body)).text
    assert record["task"] == "inpaint" and record["seed"] == "7" and record["iterations"] == "2,1"
    # The same pixels as the command line's inpaint with the same options.
    (tmp_path / "p.png").write_bytes(photo["image"])
    (tmp_path / "m.png").write_bytes(photo["mask"])
    assert main(["inpaint", str(tmp_path / "p.png"), "--mask", str(tmp_path / "m.png"), "--out",
                 str(tmp_path / "o.png"), "--model", str(converted["toy_cols"]), "--seed", "7",
                 "--iterations", "2,1", "--quiet"]) == 0
    assert np.array_equal(np.asarray(Image.open(tmp_path / "o.png").convert("RGB")), result)
    deadline = time.monotonic() + 5  # a one-call job is forgotten once its answer is sent: no folder left
    while (running.worker.jobs or job_folders() - before) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert running.worker.jobs == {} and job_folders() == before


def test_outpaint_uncrop_edit_and_candidates(running, photo):
    client = running.client
    answer = client.post("/api/v1/outpaint", files={"image": photo["image"]},
                         fields={"extend": "0,2,5,0", "options": json.dumps(FAST)})
    assert answer.status == 200
    wide = pixels_of(answer.body)
    assert wide.shape == (30, 41, 3) and np.array_equal(wide[2:, :36], photo["pixels"])
    answer = client.post("/api/v1/uncrop", files={"image": photo["image"]},
                         fields={"scale": "1.5", "options": json.dumps({**FAST, "candidates": 2})})
    assert answer.status == 200 and answer.headers["x-candidates"] == "2"
    assert Image.open(io.BytesIO(answer.body)).text["uncrop_scale"] == "1.5"
    answer = client.post("/api/v1/edit", files={"image": photo["image"], "mask": photo["mask"]},
                         fields={"options": json.dumps({**FAST, "class": 2, "cfg": 2, "seamless": False})})
    assert answer.status == 200
    record = Image.open(io.BytesIO(answer.body)).text
    assert record["class"] == "2" and record["cfg"] == "2" and record["seamless"] == "off"


def test_a_job_streams_progress_and_previews_then_its_candidates(running, photo):
    client = running.client
    answer = client.post("/api/v1/jobs", files={"image": photo["image"], "mask": photo["mask"]},
                         fields={"task": "inpaint", "options": json.dumps({**FAST, "candidates": 2})})
    assert answer.status == 202
    job = answer.json()
    events = list(client.events(job["events"]))
    names = [name for name, _ in events]
    assert names[-1] == "done" and "progress" in names and "preview" in names
    fractions = [data["fraction"] for name, data in events if name == "progress"]
    assert fractions == sorted(fractions) and 0 < fractions[-1] <= 1
    preview = next(data for name, data in events if name == "preview")
    assert len(preview["rect"]) == 4 and preview["png"]
    assert events[-1][1]["candidates"] == 2 and len(events[-1][1]["fill_bits"]) == 2
    first, second = (client.get(f"{job['result']}?candidate={k}") for k in (1, 2))
    assert first.status == second.status == 200
    assert Image.open(io.BytesIO(second.body)).text["candidate"] == "2/2"
    hole = photo["hole"]
    for answer in (first, second):
        assert np.array_equal(pixels_of(answer.body)[~hole], photo["pixels"][~hole])
    assert client.get(f"{job['result']}?candidate=3").status == 404
    folder = running.worker.get(job["id"]).folder  # the uploads went once decoded
    assert sorted(p.name for p in folder.iterdir()) == ["result-1.png", "result-2.png"]
    assert client.get(f"/api/v1/jobs/{job['id']}").json()["state"] == "done"
    assert client.get("/api/v1/jobs/nosuchjob").status == 404


def test_concurrent_clients_all_get_their_own_result_one_edit_at_a_time(running, photo, monkeypatch):
    gate = Gate(monkeypatch)
    gate.release.set()  # count only
    seeds = list(range(6))
    answers = {}

    def one(seed):
        answers[seed] = inpaint(running.client, photo, seed=seed)

    threads = [threading.Thread(target=one, args=(seed,)) for seed in seeds]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sorted(answers) == seeds and all(a.status == 200 for a in answers.values())
    assert gate.most == 1  # the worker ran the edits one after another
    for seed in (0, 5):  # each answer is its own request's edit: the same as that seed alone
        assert np.array_equal(pixels_of(inpaint(running.client, photo, seed=seed).body),
                              pixels_of(answers[seed].body))
    assert Image.open(io.BytesIO(answers[3].body)).text["seed"] == "3"


def test_cancel_mid_job(running, photo, monkeypatch):
    gate = Gate(monkeypatch)
    client = running.client
    job = client.post("/api/v1/jobs", files={"image": photo["image"], "mask": photo["mask"]},
                      fields={"task": "inpaint", "options": json.dumps(FAST)}).json()
    assert gate.entered.wait(20)  # running: after its first step
    assert client.get(f"/api/v1/jobs/{job['id']}").json()["state"] == "running"
    assert client.get(job["result"]).status == 409
    assert client.delete(f"/api/v1/jobs/{job['id']}").status == 200
    gate.release.set()
    events = list(client.events(job["events"]))
    assert events[-1][0] == "cancelled"
    state = client.get(f"/api/v1/jobs/{job['id']}").json()
    assert state["state"] == "cancelled" and "nothing was written" in state["error"]
    assert client.get(job["result"]).status == 409
    assert inpaint(client, photo).status == 200  # the worker goes on


def test_a_client_that_leaves_mid_stream_or_mid_edit(running, photo, monkeypatch):
    gate = Gate(monkeypatch)
    client = running.client
    job = client.post("/api/v1/jobs", files={"image": photo["image"], "mask": photo["mask"]},
                      fields={"task": "inpaint", "options": json.dumps(FAST)}).json()
    stream = client.events(job["events"])
    assert next(stream)[0] in ("state", "progress")
    stream.close()  # the socket goes away mid-stream
    gate.release.set()
    assert running.worker.get(job["id"]).finished.wait(20)
    assert client.get(f"/api/v1/jobs/{job['id']}").json()["state"] == "done"  # a stream is only a view
    # A one-call request whose client leaves: its edit is cancelled, the server goes on.
    gate.release.clear()
    gate.entered.clear()
    body, kind = multipart({"options": json.dumps(FAST)}, {"image": photo["image"], "mask": photo["mask"]})
    raw = socket.create_connection(("127.0.0.1", running.server.port))
    raw.sendall(f"POST /api/v1/inpaint HTTP/1.1\r\nHost: x\r\nContent-Type: {kind}\r\n"
                f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
    assert gate.entered.wait(20)
    left = running.worker.running
    raw.close()
    deadline = time.monotonic() + 10
    while not left.cancel.is_set() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert left.cancel.is_set()
    gate.release.set()
    assert left.finished.wait(20) and left.state == "cancelled"
    assert client.get("/api/v1/health").status == 200


def test_a_full_queue_answers_503_with_retry_after(converted, photo, monkeypatch):
    gate = Gate(monkeypatch)
    server = Running(converted["toy_cols"], queue_size=1)
    try:
        results = []
        first = threading.Thread(target=lambda: results.append(inpaint(server.client, photo)))
        first.start()
        assert gate.entered.wait(20)  # the first runs; the queue is empty
        job = server.client.post("/api/v1/jobs", files={"image": photo["image"], "mask": photo["mask"]},
                                 fields={"task": "inpaint", "options": json.dumps(FAST)})
        assert job.status == 202  # waits in the queue
        busy = inpaint(server.client, photo)
        assert busy.status == 503 and int(busy.headers["retry-after"]) >= 1
        assert "busy" in busy.json()["error"]
        gate.release.set()
        first.join(30)
        assert results[0].status == 200
        assert server.worker.get(job.json()["id"]).finished.wait(20)
    finally:
        server.close()


@pytest.mark.parametrize(("files", "fields", "status", "message"), [
    ({"image": b"not an image at all", "mask": "MASK"}, {}, 400, "image is not an image Fractal Studio"),
    ({"image": b"", "mask": "MASK"}, {}, 400, "image is empty (0 bytes)"),
    ({"image": "TRUNCATED", "mask": "MASK"}, {}, 400, "image is damaged or incomplete"),
    ({"image": "IMAGE", "mask": "SMALL"}, {}, 400, "mask is 5×5 but the image is 36×28"),
    ({"image": "IMAGE", "mask": "BLACK"}, {}, 400, "is all black: nothing to generate"),
    ({"image": "IMAGE"}, {}, 422, "mask: field required"),
    ({"image": "IMAGE", "mask": "MASK"}, {"options": "{not json"}, 400, "options"),
    ({"image": "IMAGE", "mask": "MASK"}, {"options": "[1, 2]"}, 400, "options must be a JSON object"),
    ({"image": "IMAGE", "mask": "MASK"}, {"options": "[" * 100 + "]" * 100}, 400, "options"),
    ({"image": "IMAGE", "mask": "MASK"}, {"options": '{"cfg": 0}'}, 400, "options.cfg must be between 1"),
    ({"image": "IMAGE", "mask": "MASK"}, {"options": '{"seed": -1}'}, 400, "options.seed must be between 0"),
    ({"image": "IMAGE", "mask": "MASK"}, {"options": '{"seed": "3"}'}, 400, "options.seed must be a whole"),
    ({"image": "IMAGE", "mask": "MASK"}, {"options": '{"iterations": "6"}'}, 400, "give 2 iteration counts"),
    ({"image": "IMAGE", "mask": "MASK"}, {"options": '{"class": "zebra"}'}, 400, "unknown class 'zebra'"),
    ({"image": "IMAGE", "mask": "MASK"}, {"options": '{"model": "nonesuch"}'}, 400, "nonesuch"),
    ({"image": "HUGE", "mask": "MASK"}, {}, 413, "Fractal Studio opens images up to"),
])
def test_garbage_uploads_answer_one_line_and_the_server_stays_up(running, photo, files, fields, status,
                                                                 message):
    half = photo["image"][:len(photo["image"]) // 2]
    named = {"IMAGE": photo["image"], "MASK": photo["mask"], "TRUNCATED": half,
             "SMALL": png(np.zeros((5, 5), np.uint8)), "BLACK": png(np.zeros((28, 36), np.uint8)),
             "HUGE": png_header_only(40000, 10)}
    files = {k: named.get(v, v) if isinstance(v, str) else v for k, v in files.items()}
    answer = running.client.post("/api/v1/inpaint", files=files, fields=fields)
    assert answer.status == status, answer.body
    error = answer.json()["error"]
    assert message in error and "\n" not in error and "Traceback" not in error and "/tmp" not in error
    assert running.client.get("/api/v1/health").status == 200


def test_task_fields_are_checked_as_the_cli_checks_them(running, photo):
    client = running.client
    for fields, status, message in (({"extend": "0,0,0,0"}, 400, "adds nothing"),
                                    ({"extend": "1,2"}, 400, "extend expects 4 numbers"),
                                    ({"extend": "0,0,40000,0"}, 413, "results are limited to")):
        answer = client.post("/api/v1/outpaint", files={"image": photo["image"]}, fields=fields)
        assert answer.status == status and message in answer.json()["error"]
    answer = client.post("/api/v1/uncrop", files={"image": photo["image"]}, fields={"scale": "0.5"})
    assert answer.status == 400 and "--scale must be greater than 1" in answer.json()["error"]
    answer = client.post("/api/v1/uncrop", files={"image": photo["image"]}, fields={"scale": "1e308"})
    assert answer.status == 400 and "at most 100" in answer.json()["error"]
    answer = client.post("/api/v1/edit", files={"image": photo["image"], "mask": photo["mask"]})
    assert answer.status == 400 and "edit needs a class" in answer.json()["error"]
    answer = client.post("/api/v1/jobs", files={"image": photo["image"]}, fields={"task": "paint"})
    assert answer.status == 400 and "unknown task 'paint'" in answer.json()["error"]


def test_size_limits_answer_413_before_the_body_is_read(converted, photo):
    server = Running(converted["toy_cols"], max_bytes=4096)
    try:
        big = np.random.default_rng(0).integers(0, 256, (80, 80, 3), dtype=np.uint8)
        answer = server.client.post("/api/v1/inpaint", files={"image": png(big), "mask": photo["mask"]})
        assert answer.status == 413 and "limit of 4 kB" in answer.json()["error"]
        # Without a Content-Length (chunked): counted as it arrives.
        body, kind = multipart({}, {"image": png(big), "mask": photo["mask"]})
        connection = server.client.connection()
        connection.putrequest("POST", "/api/v1/inpaint")
        connection.putheader("Content-Type", kind)
        connection.putheader("Transfer-Encoding", "chunked")
        connection.endheaders()
        for start in range(0, len(body), 1000):
            block = body[start:start + 1000]
            connection.send(f"{len(block):x}\r\n".encode() + block + b"\r\n")
        connection.send(b"0\r\n\r\n")
        response = connection.getresponse()
        assert response.status == 413 and "limit" in json.loads(response.read())["error"]
        connection.close()
        assert inpaint(server.client, photo).status == 200  # small requests still go through
    finally:
        server.close()


def test_a_token_is_needed_on_every_request(converted, photo):
    server = Running(converted["toy_cols"], token=TOKEN)
    try:
        anonymous = Client("127.0.0.1", server.server.port)
        wrong = Client("127.0.0.1", server.server.port, token="not-the-token")
        for path in ("/api/v1/health", "/api/v1/models", "/docs", "/api/v1/jobs/x"):
            for client in (anonymous, wrong):
                answer = client.get(path)
                assert answer.status == 401 and answer.headers["www-authenticate"] == "Bearer"
                assert "Authorization: Bearer" in answer.json()["error"]
        assert anonymous.post("/api/v1/inpaint", files={"image": photo["image"], "mask": photo["mask"]}
                              ).status == 401
        assert server.client.get("/api/v1/health").status == 200
        assert inpaint(server.client, photo).status == 200
    finally:
        server.close()


def test_serve_refuses_to_listen_beyond_loopback_without_a_token(capsys, monkeypatch):
    monkeypatch.delenv("FRACTAL_STUDIO_TOKEN", raising=False)
    assert main(["serve", "--host", "0.0.0.0", "--port", "0"]) == 2
    assert "give --token" in capsys.readouterr().err
    assert main(["serve", "--token", "short"]) == 2
    assert "at least 8 printable characters" in capsys.readouterr().err
    assert main(["serve", "--port", "0", "--model", "nonesuch"]) == 2  # before it listens
    err = capsys.readouterr().err
    assert "nonesuch" in err and "serving" not in err


def test_no_cors_unless_asked(converted):
    plain = Running(converted["toy_cols"])
    try:
        answer = plain.client.get("/api/v1/health", headers={"Origin": "http://example.test"})
        assert answer.status == 200 and "access-control-allow-origin" not in answer.headers
    finally:
        plain.close()
    allowed = Running(converted["toy_cols"], cors=("http://example.test",))
    try:
        answer = allowed.client.get("/api/v1/health", headers={"Origin": "http://example.test"})
        assert answer.headers["access-control-allow-origin"] == "http://example.test"
        other = allowed.client.get("/api/v1/health", headers={"Origin": "http://elsewhere.test"})
        assert "access-control-allow-origin" not in other.headers
    finally:
        allowed.close()


@pytest.mark.slow  # a process of its own: importing torch takes 2-6 s on a shared 2-core machine
def test_the_serve_command_starts_serves_and_stops_on_sigterm(converted):
    """The command itself, in a process of its own: a free port, the token from the environment,
    SIGTERM stops it."""
    import os
    import signal
    import subprocess
    import sys

    command = [sys.executable, "-m", "fractal_studio", "serve", "--port", "0", "--host", "0.0.0.0",
               "--model", str(converted["toy_cols"])]
    environment = {**os.environ, "FRACTAL_STUDIO_TOKEN": TOKEN, "OMP_NUM_THREADS": "1"}
    server = subprocess.Popen(command, env=environment, stderr=subprocess.PIPE, text=True)
    try:
        line = server.stderr.readline()
        assert "requests need the token" in line, line
        port = int(line.split("http://0.0.0.0:")[1].split(" ")[0])
        assert Client("127.0.0.1", port).get("/api/v1/health").status == 401
        assert Client("127.0.0.1", port, token=TOKEN).get("/api/v1/health").json()["status"] == "ok"
        server.send_signal(signal.SIGTERM)
        assert server.wait(30) == 143
    finally:
        server.kill()
        server.wait()
