"""Batch throughput of the service vs the in-process scan, same files, same run.

    python -m bench.service_batch [--n 1000] [--workers 2] [--size 64]

The service: `synthguard serve` with Redis (an own redis-server) and N
`synthguard worker` processes (one torch thread each), a server-side batch of the
folder through `POST /v1/batches`, timed from the request to the batch's `done`.
The baseline: `Detector.score` over the same files in this process (what
`synthguard scan` does), with as many torch threads as the service has worker
processes. Prints both throughputs and their ratio; writes JSON.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import httpx
import torch

from bench._procs import free_port, processes, redis_server, start, wait_ready
from bench.image_scan import write_files
from detector.inference import Detector


def in_process(paths: list[Path], threads: int, batch: int = 64, repeats: int = 3) -> float:
    """The best of ``repeats`` passes (the service's figure is its best of two batches)."""
    torch.set_num_threads(threads)
    det = Detector.load(None)
    det.score(paths[:batch])  # warm-up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for s in range(0, len(paths), batch):
            det.score(paths[s : s + batch])
        times.append(time.perf_counter() - t0)
    return min(times)


def through_service(
    root: Path, folders: list[Path], workers: int, chunk: int
) -> tuple[float, dict]:
    """The best time of one batch per folder (distinct files: no stored result helps)."""
    with redis_server() as redis_url:
        port = free_port()
        env = {
            "SYNTHGUARD_REDIS_URL": redis_url,
            "SYNTHGUARD_DATA_DIR": str(root / "data"),
            "SYNTHGUARD_BATCH_ROOTS": str(root),
            "SYNTHGUARD_TORCH_THREADS": "1",
            "SYNTHGUARD_CHUNK_SIZE": str(chunk),
            "SYNTHGUARD_PORT": str(port),
        }
        logs = root / "logs"
        logs.mkdir()
        with processes(env, logs) as procs:
            for i in range(workers):
                start(procs, ["worker", "--hostname", f"w{i}@bench", "--loglevel", "warning"],
                      env, logs / f"worker{i}.log")  # fmt: skip
            start(procs, ["serve"], env, logs / "serve.log")
            base = f"http://127.0.0.1:{port}"
            wait_ready(base, workers=workers, logs=logs)
            times = []
            with httpx.Client(base_url=base, timeout=30) as client:
                for folder in folders:
                    t0 = time.perf_counter()
                    r = client.post("/v1/batches", json={"directory": str(folder)})
                    r.raise_for_status()
                    batch_id = r.json()["id"]
                    while True:
                        view = client.get(f"/v1/batches/{batch_id}").json()
                        if view["status"] in ("done", "failed", "canceled"):
                            break
                        time.sleep(0.05)  # a client that polls often, but not in a loop
                    times.append(time.perf_counter() - t0)
    return min(times), view


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--chunk", type=int, default=32, help="batch items per task")
    ap.add_argument("--json", default="bench/results/service_batch.json")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        folders = [root / "images-a", root / "images-b"]
        for f in folders:
            f.mkdir()
        paths = write_files(folders[0], args.n, args.size)
        write_files(folders[1], args.n, args.size, seed=456)  # other crops, the same kind
        t_base = in_process(paths, threads=args.workers)
        t_service, view = through_service(root, folders, args.workers, args.chunk)
    base_ips, service_ips = args.n / t_base, args.n / t_service
    result = {
        "benchmark": "service_batch",
        "images": args.n,
        "image_size": args.size,
        "worker_processes": args.workers,
        "chunk_size": args.chunk,
        "in_process_images_per_s": round(base_ips, 1),
        "service_images_per_s": round(service_ips, 1),
        "ratio": round(service_ips / base_ips, 3),
        "target": 0.8,
        "batch_counts": view["counts"],
    }
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    print(
        f"in-process scan: {base_ips:.0f} images/s; service ({args.workers} workers): "
        f"{service_ips:.0f} images/s; ratio {result['ratio']:.3f} (target >= 0.8); "
        f"counts {view['counts']}"
    )


if __name__ == "__main__":
    main()
