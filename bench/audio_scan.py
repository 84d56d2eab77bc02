"""Voice scan speed: the whole pipeline vs the raw batched forward pass, and vs real time.

    python -m bench.audio_scan [--model DIR] [--real DIR] [--threads 1]

Recordings: ``../shared/data/real_speech`` when present (LibriSpeech FLAC and others),
else speech-like clips made here, written as the corpora encode them (FLAC/MP3/Opus).
The baseline is the model's batched forward pass on the very same chunks, already
decoded, prepared and cut; the pipeline is ``VoiceDetector.score(paths)`` (read,
decode, resample, trim, normalise, chunk, forward, calibrate, timeline). Prints both,
their ratio, and the pipeline's speed as a multiple of real time on ``--threads``
cores; writes JSON.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from detector.data.audio import chunk_clip, load_clip
from detector.inference import Detector
from detector.inference.voice import VoiceDetector
from detector.models import create, save_model
from detector.models.checkpoint import model_config_dict

SHARED_SPEECH = Path(__file__).resolve().parents[2] / "shared" / "data" / "real_speech"


def recordings(folder: Path, real: Path | None, n_made: int) -> list[Path]:
    if real is not None and real.is_dir():
        from generators.sources.audio import audio_folder_source

        return [Path(u.origin) for u in audio_folder_source(real).items]
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from generators.corpus.encoding import AudioEncodingConfig, choose_audio_encoding, encode_clip
    from tests._audio import speech_like

    paths = []
    for i in range(n_made):
        enc = choose_audio_encoding(AudioEncodingConfig(), corpus_seed=0, item_id=str(i))
        p = folder / f"{i:04d}{enc.extension}"
        p.write_bytes(encode_clip(speech_like(i, 12.0), 16_000, enc))
        paths.append(p)
    return paths


def untrained_default(folder: Path) -> Path:
    """The default architecture with random weights: speed does not depend on them."""
    model = create("audio_cnn", preset="default")
    card = {
        "modality": "audio",
        "architecture": "audio_cnn",
        "model_config": model_config_dict(model),
        "train_config": {"max_crops": 0},
        "calibration": {
            "temperature": 1.0,
            "threshold": 0.5,
            "uncertain_low": 0.4,
            "uncertain_high": 0.6,
            "val_eer": None,
        },
        "version": "untrained",
    }
    return save_model(model, card, folder / "untrained")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=None, help="model folder (default: the shipped model)")
    ap.add_argument("--real", default=str(SHARED_SPEECH), help="folder of recordings")
    ap.add_argument("--n", type=int, default=60, help="clips to make when --real is absent")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--json", default="bench/results/audio_scan.json")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        try:
            det = Detector.load(args.model, modality="audio")
        except ValueError:  # no shipped voice model in this checkout
            det = Detector.load(untrained_default(Path(tmp)))
        assert isinstance(det, VoiceDetector)
        paths = recordings(Path(tmp), Path(args.real) if args.real else None, args.n)
        clips = [load_clip(str(p)) for p in paths]
        seconds = sum(len(c) for c in clips) / det.sample_rate
        chunks = torch.from_numpy(
            np.concatenate([chunk_clip(c, det.chunk, det.hop)[0] for c in clips])
        )
        batch = 64

        def raw() -> None:
            with torch.inference_mode():
                for s in range(0, len(chunks), batch):
                    det.model(chunks[s : s + batch])

        def pipeline() -> None:
            for s in range(0, len(paths), 16):
                det.score(paths[s : s + 16], batch_size=batch)

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
    result = {
        "benchmark": "audio_scan",
        "model": det.name,
        "version": det.version,
        "recordings": len(paths),
        "audio_seconds": round(seconds, 1),
        "chunks": len(chunks),
        "chunk_s": det.chunk / det.sample_rate,
        "hop_s": det.hop / det.sample_rate,
        "threads": args.threads,
        "raw_forward_x_realtime": round(seconds / min(t_raw), 1),
        "pipeline_x_realtime": round(seconds / min(t_pipe), 1),
        "ratio": round(min(t_raw) / min(t_pipe), 3),
        "target_ratio": 0.8,
        "target_x_realtime": 200,
    }
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    print(
        f"{len(paths)} recordings, {seconds / 60:.1f} min, {len(chunks)} chunks, "
        f"{args.threads} thread(s): raw forward {result['raw_forward_x_realtime']:.0f}x real "
        f"time; scan pipeline {result['pipeline_x_realtime']:.0f}x real time (target >= 200); "
        f"ratio {result['ratio']:.3f} (target >= 0.8)"
    )


if __name__ == "__main__":
    main()
