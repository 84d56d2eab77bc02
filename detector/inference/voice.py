"""The voice detector: decode, prepare, chunk, batch, calibrate, judge, with a timeline."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from detector.inference.clips import score_clips
from detector.inference.detector import Detector, ScoreResult
from detector.media.audio import (
    SAMPLE_RATE,
    AudioLimits,
    DecodedAudio,
    decode_audio,
    prepare_speech,
)
from detector.media.errors import MediaError
from detector.models.ensemble import scoring_configs

AudioInput = str | Path | bytes | np.ndarray


class VoiceDetector(Detector):
    """Scores recordings chunk by chunk: a calibrated clip score and the segments."""

    modality = "audio"

    def __init__(
        self, model: torch.nn.Module, card: dict[str, Any], *, name: str, version: str
    ) -> None:
        self.model = model.eval()
        self._common(card, name=name, version=version)
        cfg = scoring_configs(card)[0]
        rate = cfg["frontend_config"]["sample_rate"]
        self.chunk = round(cfg["chunk_seconds"] * rate)
        self.hop = round(cfg["hop_seconds"] * rate)
        self.sample_rate: int = rate
        self.audio_limits = AudioLimits()

    def logits(self, media: Sequence[Any]) -> np.ndarray:
        return np.array(
            [s.logit for s in score_clips(self.model, media, chunk=self.chunk, hop=self.hop)]
        )

    def score(  # type: ignore[override]
        self, inputs: AudioInput | Sequence[AudioInput], *, batch_size: int = 64
    ) -> list[ScoreResult]:
        """Score paths, encoded bytes or ``(n,)`` float arrays at 16 kHz; bad inputs get an
        error. ``segments`` holds each chunk's window (each frame step's, for a model with a
        frame head), in seconds of the recording as it was given (before silence
        trimming), and its calibrated score."""
        if isinstance(inputs, str | Path | bytes | np.ndarray):
            inputs = [inputs]
        results: list[ScoreResult] = []
        clips: list[np.ndarray] = []
        offsets: list[float] = []
        ok: list[int] = []
        for item in inputs:
            t0 = time.perf_counter()
            res = ScoreResult(
                source="<bytes>"
                if isinstance(item, bytes)
                else "<array>"
                if isinstance(item, np.ndarray)
                else str(item),
                sha256=None,
                model={"name": self.name, "version": self.version},
            )
            try:
                samples = self._decode(item, res)
                prepared = prepare_speech(samples, self.sample_rate)
            except MediaError as exc:
                res.error = exc.to_dict()
            else:
                ok.append(len(results))
                clips.append(prepared.samples)
                offsets.append(prepared.offset_s)
            res.timings_ms["decode"] = round((time.perf_counter() - t0) * 1000, 3)
            results.append(res)
        t0 = time.perf_counter()
        scored = score_clips(
            self.model, clips, chunk=self.chunk, hop=self.hop, batch_size=batch_size
        )
        model_ms = (time.perf_counter() - t0) * 1000 / max(1, len(clips))
        for i, s, offset in zip(ok, scored, offsets, strict=True):
            res = results[i]
            prob = float(self.calibration.probability(s.logit))
            res.logit, res.score, res.verdict = s.logit, prob, self.calibration.verdict(prob)
            # A frame-head model's timeline is its frames (about 0.3 s), a chunk model's
            # its chunks; both through the clip's calibration.
            spans, logits = (
                (s.frame_windows, s.frame_logits)
                if s.frame_windows is not None and s.frame_logits is not None
                else (s.windows, s.chunk_logits)
            )
            probs = self.calibration.probability(np.array(logits))
            res.segments = [
                {
                    "start_s": round(offset + a / self.sample_rate, 3),
                    "end_s": round(offset + b / self.sample_rate, 3),
                    "score": float(p),
                }
                for (a, b), p in zip(spans, probs, strict=True)
            ]
            res.top_segment = int(np.argmax(probs))
            res.timings_ms["model"] = round(model_ms, 3)
        return results

    def _decode(self, item: AudioInput, res: ScoreResult) -> np.ndarray:  # type: ignore[override]
        if isinstance(item, np.ndarray):
            if item.ndim != 1 or not np.issubdtype(item.dtype, np.floating):
                raise MediaError(
                    "unsupported_media",
                    f"arrays must be (n,) float mono at {SAMPLE_RATE} Hz, got {item.shape} "
                    f"{item.dtype}",
                )
            if not np.isfinite(item).all():
                raise MediaError("corrupt_media", "the samples contain NaN or infinite values")
            res.media = {
                "kind": "audio",
                "format": "array",
                "duration_s": round(len(item) / SAMPLE_RATE, 3),
                "sample_rate": SAMPLE_RATE,
                "channels": 1,
            }
            return np.clip(item.astype(np.float32), -1.0, 1.0)
        if isinstance(item, bytes):
            res.sha256 = hashlib.sha256(item).hexdigest()
            decoded = decode_audio(item, limits=self.audio_limits)
        else:
            decoded = decode_audio(item, limits=self.audio_limits)
            res.sha256 = _sha256_file(Path(item))
        res.media = _media(decoded)
        return decoded.samples


def _media(d: DecodedAudio) -> dict[str, Any]:
    return {
        "kind": "audio",
        "format": d.format,
        "duration_s": round(d.duration_s, 3),
        "sample_rate": d.source_rate,
        "channels": d.channels,
        "bytes": d.n_bytes,
    }


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
