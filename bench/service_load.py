"""Concurrent uploads for a fixed time: throughput, latency, errors, and the queue
draining back to zero.

    python -m bench.service_load [--clients 8] [--seconds 20] [--modes embedded,celery]

N clients (threads, loopback only, each with its own kept-alive connection) upload
distinct images with `?wait=30` back to back. Reports requests per second, p50 and
p99 latency, the count of errors (any status other than 200), and the queue depth
and queued scans once the clients stop (both must return to zero). The baseline,
measured in the same run, is the in-process scan of the same kind of images one at a
time and in batches: how many per second the model alone could take.
"""

from __future__ import annotations

import argparse
import io
import json
import re
import tempfile
import threading
import time
from pathlib import Path

import httpx
import numpy as np
import torch
from PIL import Image

from bench._procs import free_port, processes, redis_server, start, wait_ready
from detector.inference import Detector


def make_images(n: int, size: int, seed: int) -> list[bytes]:
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        buf = io.BytesIO()
        Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)).save(buf, "PNG")
        out.append(buf.getvalue())
    return out


def model_rate(images: list[bytes], threads: int) -> dict[str, float]:
    torch.set_num_threads(threads)
    det = Detector.load(None)
    det.score(images[:16])
    t0 = time.perf_counter()
    for b in images[:200]:
        det.score(b)
    one = 200 / (time.perf_counter() - t0)
    t0 = time.perf_counter()
    for s in range(0, 1000, 64):
        det.score(images[s : s + 64])
    batched = 1000 / (time.perf_counter() - t0)
    return {"one_at_a_time_per_s": round(one, 1), "batched_per_s": round(batched, 1)}


def load(base: str, images: list[bytes], clients: int, seconds: float) -> dict[str, float]:
    lat: list[float] = []
    errors: list[str] = []
    counter = iter(range(len(images)))
    lock = threading.Lock()
    stop = time.monotonic() + seconds

    def client() -> None:
        with httpx.Client(base_url=base, timeout=60) as c:
            while time.monotonic() < stop:
                with lock:
                    i = next(counter)
                t0 = time.perf_counter()
                try:
                    r = c.post("/v1/scans?wait=30", files={"file": (f"{i}.png", images[i])})
                    ok = r.status_code == 200
                    if not ok:
                        errors.append(f"{r.status_code} {r.text[:100]}")
                except httpx.HTTPError as exc:
                    ok = False
                    errors.append(repr(exc))
                with lock:
                    lat.append((time.perf_counter() - t0) * 1000)

    threads = [threading.Thread(target=client) for _ in range(clients)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - t0
    a = np.asarray(lat)
    return {
        "requests": len(lat),
        "requests_per_s": round(len(lat) / elapsed, 1),
        "p50_ms": round(float(np.percentile(a, 50)), 1),
        "p99_ms": round(float(np.percentile(a, 99)), 1),
        "errors": len(errors),
        "first_errors": errors[:3],
    }


def drained(base: str, timeout: float = 30) -> dict[str, float]:
    deadline = time.monotonic() + timeout
    depth = queued = -1.0
    while time.monotonic() < deadline:
        text = httpx.get(base + "/metrics", timeout=5).text
        depth = sum(
            float(v) for v in re.findall(r"^synthguard_queue_depth\{[^}]*\} (\S+)", text, re.M)
        )
        queued = sum(
            float(v)
            for v in re.findall(
                r'^synthguard_scans\{status="(?:queued|running)"[^}]*\} (\S+)', text, re.M
            )
        )
        if depth == 0 and queued == 0:
            break
        time.sleep(0.5)
    return {"queue_depth_after": depth, "queued_or_running_after": queued}


def run_mode(mode: str, root: Path, images: list[bytes], args: argparse.Namespace) -> dict:
    port = free_port()
    env = {"SYNTHGUARD_DATA_DIR": str(root / f"data-{mode}"), "SYNTHGUARD_PORT": str(port)}
    logs = root / f"logs-{mode}"
    logs.mkdir()

    def go(procs: list) -> dict:  # type: ignore[type-arg]
        start(procs, ["serve"], env, logs / "serve.log")
        base = f"http://127.0.0.1:{port}"
        wait_ready(base, workers=args.workers if mode == "celery" else 0, logs=logs)
        out = load(base, images, args.clients, args.seconds)
        return out | drained(base)

    if mode == "embedded":
        with processes(env, logs) as procs:
            return go(procs)
    with redis_server() as redis_url:
        env |= {"SYNTHGUARD_REDIS_URL": redis_url, "SYNTHGUARD_TORCH_THREADS": "1"}
        with processes(env, logs) as procs:
            for i in range(args.workers):
                start(procs, ["worker", "--hostname", f"w{i}@load", "--loglevel", "warning"],
                      env, logs / f"worker{i}.log")  # fmt: skip
            return go(procs)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--seconds", type=float, default=20)
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--workers", type=int, default=2, help="Celery worker processes")
    ap.add_argument("--modes", default="embedded,celery")
    ap.add_argument("--json", default="bench/results/service_load.json")
    args = ap.parse_args()
    images = make_images(int(args.seconds * 400) + 2000, args.size, seed=1)
    result: dict[str, object] = {"benchmark": "service_load", "clients": args.clients,
                                 "seconds": args.seconds, "image_size": args.size}  # fmt: skip
    result["model"] = model_rate(images[-1000:], threads=2)
    print(f"model alone: {result['model']}")
    with tempfile.TemporaryDirectory() as tmp:
        for mode in args.modes.split(","):
            r = run_mode(mode, Path(tmp), images, args)
            result[mode] = r
            after = f"queue depth {r['queue_depth_after']}, "
            after += f"queued/running {r['queued_or_running_after']}"
            print(f"{mode}: {r['requests_per_s']} req/s, p50 {r['p50_ms']} ms, p99 "
                  f"{r['p99_ms']} ms, {r['errors']} errors; after: {after}")  # fmt: skip
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
