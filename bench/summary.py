"""The README's performance table, from the JSON files the benchmarks wrote.

python -m bench.summary [--results bench/results]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any


def _load(folder: Path, name: str) -> dict[str, Any] | None:
    path = folder / f"{name}.json"
    return json.loads(path.read_text()) if path.is_file() else None


def rows(folder: Path) -> list[tuple[str, str, str, str]]:
    out: list[tuple[str, str, str, str]] = []
    if r := _load(folder, "image_scan"):
        out.append(("image_scan", f"{r['pipeline_images_per_s']:.0f} vs "
                    f"{r['raw_forward_images_per_s']:.0f} images/s", f"{r['ratio']:.2f}",
                    ">= 0.8"))  # fmt: skip
    if r := _load(folder, "audio_scan"):
        out.append((f"audio_scan ({r['threads']} thread)", f"{r['pipeline_x_realtime']:.0f}x vs "
                    f"{r['raw_forward_x_realtime']:.0f}x real time", f"{r['ratio']:.2f}",
                    ">= 0.8 and >= 200x"))  # fmt: skip
    if r := _load(folder, "video_scan"):
        out.append((f"video_scan ({r['threads']} threads)",
                    f"{r['clip']['seconds']:.0f} s 720p clip in {r['pipeline_s']:.1f} s = "
                    f"{r['pipeline_x_realtime']:.1f}x real time; face model alone "
                    f"{r['raw_forward_s']:.2f} s", f"{r['ratio']:.2f}",
                    ">= 0.7 and >= 2x"))  # fmt: skip
    for name, label in (("service_batch_1", "1 worker"), ("service_batch", "2 workers")):
        if r := _load(folder, name):
            out.append((f"service_batch ({label})", f"{r['service_images_per_s']:.0f} vs "
                        f"{r['in_process_images_per_s']:.0f} images/s", f"{r['ratio']:.2f}",
                        ">= 0.8"))  # fmt: skip
    if r := _load(folder, "service_latency"):
        m = r["model"]
        for mode, target in (("embedded", 15), ("celery", 30)):
            if mode in r:
                s = r[mode]
                out.append((f"service_latency ({mode})",
                            f"p50 {s['p50_ms']:.1f} / p99 {s['p99_ms']:.1f} ms vs model "
                            f"{m['p50_ms']:.1f} / {m['p99_ms']:.1f} ms",
                            f"+{s['p50_overhead_ms']:.1f} ms", f"<= {target} ms"))  # fmt: skip
    if r := _load(folder, "service_load"):
        for mode in ("embedded", "celery"):
            if mode in r:
                s = r[mode]
                out.append((f"service_load ({mode}, {r['clients']} clients)",
                            f"{s['requests_per_s']:.0f} req/s, p99 {s['p99_ms']:.0f} ms; "
                            f"model alone {r['model']['one_at_a_time_per_s']:.0f}/s one at a "
                            f"time, {r['model']['batched_per_s']:.0f}/s batched",
                            f"{s['errors']} errors, queue {s['queue_depth_after']:.0f} after",
                            "0 errors, queue 0"))  # fmt: skip
    if r := _load(folder, "train"):
        reached = (f"{r['seconds_to_val_auc']:.0f} s" if r["seconds_to_val_auc"] is not None
                   else "not reached")  # fmt: skip
        out.append(("train", f"val AUC {r['target_val_auc']} in {reached}; "
                    f"{r['train_images_per_s']:.0f} vs {r['raw_step_images_per_s']:.0f} "
                    "images/s", f"{r['ratio']:.2f}", "(none)"))  # fmt: skip
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--results", default="bench/results")
    args = ap.parse_args()
    print("| benchmark | measured | ratio / overhead | target |")
    print("|---|---|---:|---|")
    for r in rows(Path(args.results)):
        print("| " + " | ".join(r) + " |")


if __name__ == "__main__":
    main()
