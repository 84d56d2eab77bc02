"""Image scan throughput: the whole pipeline vs the raw batched forward pass, same run.

    python -m bench.image_scan [--model DIR] [--n 2000] [--size 64] [--threads 2]

Files are starter-photo crops written as the corpus encodes them (JPEG/PNG mix).
The baseline is the model's batched forward pass on the very same crops, already
decoded and cut; the pipeline is ``Detector.score(paths)`` (read, decode, validate,
crop, forward, calibrate). Prints both throughputs and their ratio; writes JSON.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from detector.inference import Detector
from detector.inference.batch import to_batch
from detector.inference.crops import grid_crops
from detector.media import decode_image
from generators.corpus.encoding import EncodingConfig, choose_encoding, encode_image
from generators.sources import starter_source


def write_files(folder: Path, n: int, size: int, *, seed: int = 123) -> list[Path]:
    enc = EncodingConfig(size=size)
    paths = []
    for i, crop in enumerate(starter_source().crops(n, size=size, seed=seed)):
        e = choose_encoding(enc, corpus_seed=0, item_id=str(i))
        p = folder / f"{i:06d}{e.extension}"
        p.write_bytes(encode_image(crop.image, e))
        paths.append(p)
    return paths


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=None, help="model folder (default: the shipped model)")
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--size", type=int, default=64, help="side of the test images")
    ap.add_argument("--batch", type=int, default=256, help="images per score() call")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--json", default="bench/results/image_scan.json")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    det = Detector.load(args.model)
    with tempfile.TemporaryDirectory() as tmp:
        paths = write_files(Path(tmp), args.n, args.size)
        pixels = [decode_image(p).pixels for p in paths]
        crops = np.concatenate(
            [grid_crops(p, det.input_size, max_crops=det.max_crops)[0] for p in pixels]
        )
        x_all = to_batch(crops)
        n_crops = len(crops)
        crop_batch = args.batch * n_crops // len(paths)

        def raw() -> None:
            with torch.inference_mode():
                for s in range(0, n_crops, crop_batch):
                    det.model(x_all[s : s + crop_batch])

        def pipeline() -> None:
            for s in range(0, len(paths), args.batch):
                det.score(paths[s : s + args.batch], batch_size=crop_batch)

        raw()  # warm-up
        pipeline()
        t_raw, t_pipe = [], []
        for _ in range(args.repeats):  # interleaved, so machine noise hits both alike
            t0 = time.perf_counter()
            raw()
            t_raw.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            pipeline()
            t_pipe.append(time.perf_counter() - t0)
    raw_ips = len(paths) / min(t_raw)
    pipe_ips = len(paths) / min(t_pipe)
    result = {
        "benchmark": "image_scan",
        "model": det.name,
        "version": det.version,
        "images": len(paths),
        "image_size": args.size,
        "crops_per_image": n_crops / len(paths),
        "threads": args.threads,
        "raw_forward_images_per_s": round(raw_ips, 1),
        "pipeline_images_per_s": round(pipe_ips, 1),
        "ratio": round(pipe_ips / raw_ips, 3),
        "target": 0.8,
    }
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    print(
        f"raw forward: {raw_ips:.0f} images/s; scan pipeline: {pipe_ips:.0f} images/s; "
        f"ratio {result['ratio']:.3f} (target >= 0.8)"
    )


if __name__ == "__main__":
    main()
