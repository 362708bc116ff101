"""The HTTP server under load: N inpaint requests, C at a time, against `fractal-studio serve` in a
process of its own (the bundled photo model unless --model), over TCP on 127.0.0.1.

    .venv/bin/python benchmarks/server_load.py [--requests 200] [--concurrency 8] [--model photo_64]

Every answer is checked: status 200, a PNG whose pixels outside the hole are the photo's bit for
bit, and the seed of its own request in its record (nothing lost, nothing mixed up). Prints the
latency percentiles (from sending the request to the last byte of the answer, queueing included),
the throughput, and the server's resident memory after the first tenth of the requests and at the
end (it should stay flat: ended jobs leave nothing behind).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import re
import statistics
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image

from fractal_studio.server.client import Client


def photo(width: int = 256, height: int = 192) -> tuple[np.ndarray, np.ndarray]:
    y, x = np.mgrid[0:height, 0:width]
    noise = np.random.default_rng(0).integers(-8, 9, (height, width, 3))
    pixels = np.clip(np.stack([x, y + 30, 200 - x // 2 - y // 3], -1) + noise, 0, 255).astype(np.uint8)
    hole = np.zeros((height, width), bool)
    hole[80:112, 100:140] = True
    return pixels, hole


def png(pixels: np.ndarray) -> bytes:
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, format="PNG")
    return out.getvalue()


def rss_mb(pid: int) -> float:
    text = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"VmRSS:\s+(\d+) kB", text).group(1)) / 1024


def start(model: str, queue: int, threads: int | None) -> tuple[subprocess.Popen, int]:
    command = [str(Path(sys.executable).with_name("fractal-studio")), "serve", "--port", "0",
               "--model", model, "--queue", str(queue)]
    if threads is not None:
        command += ["--threads", str(threads)]
    server = subprocess.Popen(command, stderr=subprocess.PIPE, text=True)
    line = server.stderr.readline()
    match = re.search(r"http://127\.0\.0\.1:(\d+)", line)
    if match is None:
        server.kill()
        raise SystemExit(f"the server did not start: {line}{server.stderr.read()}")
    threading.Thread(target=server.stderr.read, daemon=True).start()  # keep its stderr drained
    return server, int(match.group(1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--model", default="photo_64")
    parser.add_argument("--threads", type=int, help="the server's torch threads")
    args = parser.parse_args()

    pixels, hole = photo()
    image, mask = png(pixels), png(hole.astype(np.uint8) * 255)
    server, port = start(args.model, queue=max(8, args.concurrency), threads=args.threads)
    client = Client("127.0.0.1", port, timeout=600)
    latencies: list[float] = []
    problems: list[str] = []
    memory: dict[str, float] = {}
    done = 0
    lock = threading.Lock()

    def one(seed: int) -> None:
        nonlocal done
        started = time.perf_counter()
        answer = client.post("/api/v1/inpaint", files={"image": image, "mask": mask},
                             fields={"options": json.dumps({"seed": seed})})
        elapsed = time.perf_counter() - started
        problem = None
        if answer.status != 200:
            problem = f"request {seed}: {answer.status} {answer.body[:120]!r}"
        else:
            result = Image.open(io.BytesIO(answer.body))
            if result.text.get("seed") != str(seed):
                problem = f"request {seed}: the answer carries seed {result.text.get('seed')}"
            elif not np.array_equal(np.asarray(result.convert("RGB"))[~hole], pixels[~hole]):
                problem = f"request {seed}: pixels outside the hole changed"
        with lock:
            latencies.append(elapsed)
            if problem:
                problems.append(problem)
            done += 1
            if done == max(1, args.requests // 10):
                memory["after the first tenth"] = rss_mb(server.pid)

    try:
        memory["started, model loaded"] = rss_mb(server.pid)
        began = time.perf_counter()
        with ThreadPoolExecutor(args.concurrency) as pool:
            list(pool.map(one, range(args.requests)))
        wall = time.perf_counter() - began
        memory["at the end"] = rss_mb(server.pid)
        health = client.get("/api/v1/health").json()
    finally:
        server.terminate()
        server.wait(30)

    latencies.sort()
    p = lambda q: latencies[min(len(latencies) - 1, int(round(q * (len(latencies) - 1))))]  # noqa: E731
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), "?")
    print(f"{args.requests} inpaint requests ({pixels.shape[1]}x{pixels.shape[0]} photo, "
          f"{int(hole.sum())}-pixel hole, model {args.model}), {args.concurrency} at a time, "
          f"on {cpu} ({os.cpu_count()} cores), device {health['device']}")
    print(f"answered {len(latencies)}, problems {len(problems)}; wall {wall:.1f} s, "
          f"{args.requests / wall:.2f} requests/s")
    print(f"latency p50 {p(0.5):.2f} s, p90 {p(0.9):.2f} s, p99 {p(0.99):.2f} s, max {latencies[-1]:.2f} s, "
          f"mean {statistics.fmean(latencies):.2f} s")
    print("server RSS: " + ", ".join(f"{name} {value:.0f} MB" for name, value in memory.items()))
    for problem in problems[:10]:
        print("  " + problem)
    if problems:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
