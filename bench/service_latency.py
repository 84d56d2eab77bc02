"""Single-upload latency through the service vs the model's own single-item latency.

    python -m bench.service_latency [--n 200] [--modes embedded,celery]

One upload at a time (`POST /v1/scans?wait=10`, a kept-alive connection, distinct
files so no answer comes from the result cache), p50 and p99 end to end; the
baseline is `Detector.score` of one file's bytes in this process (decode, crops,
forward, calibration), p50 and p99, measured in the same run. Reports the
difference in milliseconds. Modes: the embedded default, and Celery (an own
redis-server and one `synthguard worker`).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np
import torch

from bench._procs import free_port, processes, redis_server, start, wait_ready
from bench.image_scan import write_files
from bench.service_load import make_images
from detector.inference import Detector


def percentiles(ms: list[float]) -> dict[str, float]:
    a = np.asarray(ms)
    return {"p50_ms": round(float(np.percentile(a, 50)), 2),
            "p99_ms": round(float(np.percentile(a, 99)), 2)}  # fmt: skip


def model_latency(blobs: list[bytes], threads: int) -> dict[str, float]:
    torch.set_num_threads(threads)
    det = Detector.load(None)
    for b in blobs[:10]:
        det.score(b)
    ms = []
    for b in blobs:
        t0 = time.perf_counter()
        det.score(b)
        ms.append((time.perf_counter() - t0) * 1000)
    return percentiles(ms)


def service_latency(root: Path, blobs: list[bytes], mode: str, threads: int) -> dict[str, float]:
    port = free_port()
    env = {
        "SYNTHGUARD_DATA_DIR": str(root / f"data-{mode}"),
        "SYNTHGUARD_PORT": str(port),
        "SYNTHGUARD_TORCH_THREADS": str(threads),
    }
    logs = root / f"logs-{mode}"
    logs.mkdir()

    def run(procs: list) -> dict[str, float]:  # type: ignore[type-arg]
        start(procs, ["serve"], env, logs / "serve.log")
        base = f"http://127.0.0.1:{port}"
        wait_ready(base, workers=1 if mode == "celery" else 0, logs=logs)
        ms = []
        with httpx.Client(base_url=base, timeout=30) as client:
            for b in make_images(10, 64, seed=time.monotonic_ns() % 2**32):
                client.post("/v1/scans?wait=10", files={"file": ("w.png", b)})
            for i, b in enumerate(blobs):
                t0 = time.perf_counter()
                r = client.post("/v1/scans?wait=10", files={"file": (f"{i}.img", b)})
                ms.append((time.perf_counter() - t0) * 1000)
                if r.status_code != 200:
                    raise RuntimeError(f"upload {i}: {r.status_code} {r.text[:200]}")
        return percentiles(ms)

    if mode == "embedded":
        with processes(env, logs) as procs:
            return run(procs)
    with redis_server() as redis_url:
        env["SYNTHGUARD_REDIS_URL"] = redis_url
        with processes(env, logs) as procs:
            start(procs, ["worker", "--loglevel", "warning"], env, logs / "worker.log")
            return run(procs)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--threads", type=int, default=2, help="torch threads, model and service")
    ap.add_argument("--modes", default="embedded,celery")
    ap.add_argument("--json", default="bench/results/service_latency.json")
    args = ap.parse_args()
    result: dict[str, object] = {"benchmark": "service_latency", "uploads": args.n,
                                 "image_size": args.size, "threads": args.threads}  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        folder = root / "images"
        folder.mkdir()
        blobs = [p.read_bytes() for p in write_files(folder, args.n, args.size)]
        model = model_latency(blobs, args.threads)
        result["model"] = model
        print(f"model alone: p50 {model['p50_ms']:.2f} ms, p99 {model['p99_ms']:.2f} ms")
        targets = {"embedded": 15.0, "celery": 30.0}
        for mode in args.modes.split(","):
            svc = service_latency(root, blobs, mode, args.threads)
            overhead = round(svc["p50_ms"] - model["p50_ms"], 2)
            result[mode] = {**svc, "p50_overhead_ms": overhead,
                            "p99_overhead_ms": round(svc["p99_ms"] - model["p99_ms"], 2),
                            "target_p50_overhead_ms": targets[mode]}  # fmt: skip
            print(f"{mode}: p50 {svc['p50_ms']:.2f} ms, p99 {svc['p99_ms']:.2f} ms; "
                  f"p50 overhead {overhead:.2f} ms (target <= {targets[mode]:.0f})")  # fmt: skip
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
