"""Training speed: seconds to reach validation AUC 0.99, and training throughput as a
ratio of the raw optimisation step, same run.

    python -m bench.train [--corpus DIR] [--epochs 12]

The corpus is `corpora/image-default` when it exists (`make corpus-default` style,
built by `make default-image-model`); otherwise the benchmark builds a small one from
the starter photos with two generators at their `tiny` presets, and says so. Training
is `synthguard train --preset default` (the shipped model's recipe) for at most
``--epochs`` epochs. Throughput: training images per second over the whole loop
(augmentation on both classes, crops, forward, backward, step, validation) against the
raw step (forward, backward, step of the same model on one ready batch, repeated):
the ratio says what the data pipeline and validation cost.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from detector.models import create
from detector.train.config import TrainConfig
from detector.train.image import train_image_detector

DEFAULT_CORPUS = Path("corpora/image-default")


def bench_corpus(arg: str | None, work: Path) -> tuple[Path, str]:
    if arg:
        return Path(arg), arg
    if (DEFAULT_CORPUS / "manifest.jsonl").is_file():
        return DEFAULT_CORPUS, str(DEFAULT_CORPUS)
    out = work / "corpus"
    cmd = [str(Path(sys.executable).parent / "synthguard"), "corpus", "build", "--real",
           "starter", "--generators", "gan_tconv,ae_bilinear", "--preset", "tiny",
           "--per-generator", "400", "--out", str(out)]  # fmt: skip
    print("building a bench corpus (corpora/image-default is absent):", " ".join(cmd[1:]))
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return out, "bench corpus: starter photos, gan_tconv + ae_bilinear (tiny), 400 each"


def raw_step_rate(threads: int, steps: int = 30) -> float:
    torch.set_num_threads(threads)
    cfg = TrainConfig.preset("default")
    model = create("image_cnn", preset="default")
    size = model.config.input_size  # type: ignore[union-attr]
    x = torch.rand(cfg.batch_size, 3, size, size)
    y = (torch.rand(cfg.batch_size) > 0.5).float()
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr)
    model.train()

    def step() -> None:
        loss = F.binary_cross_entropy_with_logits(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    for _ in range(3):
        step()
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    return steps * cfg.batch_size / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--corpus", default=None)
    ap.add_argument("--epochs", type=int, default=12)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--target-auc", type=float, default=0.99)
    ap.add_argument("--json", default="bench/results/train.json")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        corpus, what = bench_corpus(args.corpus, Path(tmp))
        raw = raw_step_rate(args.threads)
        torch.set_num_threads(args.threads)
        t0 = time.perf_counter()
        result = train_image_detector(
            [corpus],
            Path(tmp) / "model",
            preset="default",
            train_overrides={"epochs": args.epochs, "patience": args.epochs},
            resume=False,
        )
        total = time.perf_counter() - t0
    history = result.history
    n_train = sum(result.card["split_sizes"]["train"].values())
    reached = next((h for h in history if h["val_auc"] >= args.target_auc), None)
    loop_s = history[-1]["elapsed_s"]
    pipeline = n_train * len(history) / loop_s
    out = {
        "benchmark": "train",
        "corpus": what,
        "train_images": n_train,
        "epochs": len(history),
        "threads": args.threads,
        "seconds_to_val_auc": None if reached is None else reached["elapsed_s"],
        "epoch_reached": None if reached is None else reached["epoch"],
        "target_val_auc": args.target_auc,
        "best_val_auc": round(max(h["val_auc"] for h in history), 4),
        "train_images_per_s": round(pipeline, 1),
        "raw_step_images_per_s": round(raw, 1),
        "ratio": round(pipeline / raw, 3),
        "total_seconds_with_decode_and_calibration": round(total, 1),
    }
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(out, indent=2) + "\n")
    when = (
        f"{reached['elapsed_s']:.0f} s (epoch {reached['epoch']})"
        if reached
        else f"not within {len(history)} epochs (best {out['best_val_auc']})"
    )
    rates = f"{pipeline:.0f} images/s vs raw step {raw:.0f} images/s"
    print(f"{what}: validation AUC {args.target_auc} after {when}; training "
          f"{rates}: ratio {out['ratio']:.3f}")  # fmt: skip


if __name__ == "__main__":
    main()
