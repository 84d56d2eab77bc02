"""The video detector: sampled frames, their faces, the voice track, one calibrated score.

A video model folder holds the face model (an image detector trained on face crops,
``model.safetensors``), the voice model it was calibrated with (``voice/``) and a card
saying how frames are sampled and how the evidence is combined:

1. Frames are sampled (``scoring.sampling``: by default 2 per second, at most 240).
2. In each frame the faces are found (OpenCV's bundled Haar cascade: the whole frame
   searched on every ``detect_every``-th sampled frame, the faces followed between by
   a search around their last place: ``detector.inference.video_faces``) and each face
   crop is scored by the face model; the frame's logit is its most synthetic face. A
   frame with no face is scored whole (resized so its shorter side is the crop size).
   Decoding and detection run on a background thread while the model scores the
   frames before.
3. The visual logit is the mean of the top quarter of the frame logits: a swap that
   covers part of the video still counts, and a long real video does not look more
   synthetic the longer it is (the same rule as the voice timeline).
4. The voice track, when there is one, is scored by the voice detector (its clip logit;
   a track longer than 10 minutes in 10-minute windows, the largest window logit).
5. Each of the two logits is mapped by a logistic fit on validation videos
   (``a * logit + b``); the video's logit is the larger of the two (a video is as
   synthetic as its most synthetic evidence), and the threshold and uncertain band
   are chosen on validation videos for that logit.
"""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from detector.config import from_dict, to_dict
from detector.data.faces import FaceCropConfig
from detector.eval.calibration import Calibration
from detector.inference.batch import score_pixels
from detector.inference.detector import Detector, ScoreResult
from detector.inference.video_faces import FrameFaces, prefetch, stream_faces
from detector.media.errors import MediaError
from detector.media.video import (
    SamplingConfig,
    VideoLimits,
    decode_audio_track,
    sample_frames,
    video_facts,
)

VideoInput = str | Path | bytes
FRAME_BATCH = 32  # frames whose crops go through the model together
VOICE_WINDOW_S = 600.0  # the voice track is decoded and scored this much at a time


@dataclass(frozen=True)
class VideoScoringConfig:
    """How a video is read and judged (kept in the card: training, evaluation and scans
    use the same)."""

    sampling: SamplingConfig = field(
        default_factory=lambda: SamplingConfig(mode="fps", fps=2.0, max_frames=240)
    )
    crop: FaceCropConfig = field(default_factory=FaceCropConfig)
    # Whole frames are searched for faces on every this many sampled frames, the faces
    # followed between (detector.inference.video_faces): detection is the costliest step.
    detect_every: int = 4
    top_fraction: float = 0.25  # of the frame logits, averaged into the visual logit
    use_voice: bool = True

    def __post_init__(self) -> None:
        if not 0 < self.top_fraction <= 1:
            raise ValueError(f"top_fraction must be in (0, 1], got {self.top_fraction}")
        if self.detect_every < 1:
            raise ValueError(f"detect_every must be at least 1, got {self.detect_every}")


@dataclass(frozen=True)
class Affine:
    """``a * logit + b``: a logistic fit of one kind of evidence on validation videos."""

    a: float = 1.0
    b: float = 0.0

    def __call__(self, z: float | np.ndarray) -> Any:
        return self.a * np.asarray(z, dtype=np.float64) + self.b


@dataclass
class FrameEvidence:
    t: float
    logit: float
    faces: list[tuple[list[int], float]]  # (box, logit)
    whole: bool  # no face: the whole frame was scored


@dataclass
class VideoEvidence:
    """Uncalibrated evidence of one video (what evaluation and calibration use)."""

    frames: list[FrameEvidence]
    visual: float  # the aggregated frame logits
    voice: float | None  # the voice detector's clip logit, None without a voice track
    voice_segments: list[dict[str, Any]] = field(default_factory=list)
    media: dict[str, Any] = field(default_factory=dict)


def aggregate_frames(logits: Sequence[float], top_fraction: float = 0.25) -> float:
    """The mean of the top ``top_fraction`` of the frame logits (at least one)."""
    x = np.sort(np.asarray(logits, dtype=np.float64))[::-1]
    k = max(1, math.ceil(len(x) * top_fraction))
    return float(x[:k].mean())


class VideoDetector(Detector):
    """Scores videos: a calibrated score, a per-frame timeline with the faces, and the
    voice track's segments."""

    modality = "video"

    def __init__(
        self,
        face_model: torch.nn.Module,
        card: dict[str, Any],
        *,
        voice: Detector | None,
        name: str,
        version: str,
    ) -> None:
        self.model = face_model.eval().to(memory_format=torch.channels_last)
        self._common(card, name=name, version=version)
        self.face_card: dict[str, Any] = card["face"]
        self.input_size: int = self.face_card["model_config"]["input_size"]
        self.max_crops: int = self.face_card["train_config"]["max_crops"]
        self.face_calibration = Calibration(**self.face_card["calibration"])
        self.scoring = from_dict(VideoScoringConfig, card.get("scoring", {}))
        agg = card.get("aggregation", {})
        self.visual_map = Affine(**agg.get("visual", {}))
        self.voice_map = Affine(**agg.get("voice", {}))
        self.voice = voice
        self.video_limits = VideoLimits()
        self.folder: Path | None = None  # set by from_folder

    @classmethod
    def from_folder(cls, folder: str | Path, *, device: str = "cpu") -> VideoDetector:
        from safetensors.torch import load_file

        from detector.identity import model_identity
        from detector.models import create

        folder = Path(folder)
        ident = model_identity(folder, modality="video")
        card = ident.card
        face = card["face"]
        model = create(face["architecture"], preset="default", **face["model_config"])
        model.load_state_dict(load_file(str(folder / "model.safetensors")))
        voice = None
        if (folder / "voice" / "card.json").is_file():
            voice = Detector.load(folder / "voice", device=device)
        det = cls(model.to(device), card, voice=voice, name=ident.name, version=ident.version)
        det.folder = folder
        return det

    # --- evidence -------------------------------------------------------------------------

    def evidence(
        self, item: VideoInput, *, sampling: SamplingConfig | None = None
    ) -> VideoEvidence:
        """Decode, find faces, score crops and the voice track: uncalibrated evidence.
        Raises ``MediaError`` for a file that cannot be used."""
        src = item if isinstance(item, bytes) else Path(item)
        # The stream checks the header (what probe_video does) and carries its facts.
        with sample_frames(src, sampling or self.scoring.sampling,
                           limits=self.video_limits) as stream:  # fmt: skip
            info = stream.info
            frames = self._frame_evidence(stream)
        if not frames:
            raise MediaError("corrupt_media", "no frame of the video could be decoded")
        voice_logit, segments = None, []
        if self.voice is not None and self.scoring.use_voice and info.has_audio:
            voice_logit, segments = self._voice_evidence(src, info.duration_s)
        return VideoEvidence(
            frames=frames,
            visual=aggregate_frames([f.logit for f in frames], self.scoring.top_fraction),
            voice=voice_logit,
            voice_segments=segments,
            media=video_facts(info),
        )

    def _voice_evidence(
        self, src: Path | bytes, duration_s: float
    ) -> tuple[float | None, list[dict[str, Any]]]:
        """The voice track, scored in windows of ``VOICE_WINDOW_S`` (a 3-hour track is
        never held whole): the segments of every window, in the video's time, and the
        largest window logit (within one window, the voice detector's own clip rule)."""
        assert self.voice is not None
        logits: list[float] = []
        segments: list[dict[str, Any]] = []
        start = 0.0
        while start < max(duration_s, 1e-3):
            end = start + VOICE_WINDOW_S
            audio = decode_audio_track(src, limits=self.video_limits, start_s=start,
                                       end_s=end if end < duration_s else None)  # fmt: skip
            if audio is None:
                break
            if len(audio):
                res = self.voice.score(audio)[0]
                if res.error is None and res.logit is not None:
                    logits.append(res.logit)
                    segments += [
                        {**seg, "start_s": round(seg["start_s"] + start, 3),
                         "end_s": round(seg["end_s"] + start, 3)}
                        for seg in res.segments
                    ]  # fmt: skip
            start = end
        return (max(logits) if logits else None), segments

    def _frame_evidence(self, frames: Iterator[Any]) -> list[FrameEvidence]:
        """Faces found and cut on a background thread while the model scores the frames
        before them, ``FRAME_BATCH`` frames at a time."""
        out: list[FrameEvidence] = []
        batch: list[FrameFaces] = []

        def flush() -> None:
            crops: list[np.ndarray] = []
            for f in batch:
                crops.extend(c for _b, c in f.faces)
                if f.whole is not None:
                    crops.append(f.whole)
            scored = score_pixels(self.model, crops, size=self.input_size,
                                  max_crops=self.max_crops)  # fmt: skip
            pos = 0
            for f in batch:
                if f.whole is not None:
                    out.append(FrameEvidence(f.t, scored[pos].logit, [], True))
                    pos += 1
                    continue
                logits = [s.logit for s in scored[pos : pos + len(f.faces)]]
                pos += len(f.faces)
                boxes = [b for b, _c in f.faces]
                out.append(
                    FrameEvidence(f.t, max(logits), list(zip(boxes, logits, strict=True)), False)
                )
            batch.clear()

        cut = stream_faces(frames, self.scoring.crop, every=self.scoring.detect_every)
        for f in prefetch(cut, size=2 * FRAME_BATCH):
            batch.append(f)
            if len(batch) >= FRAME_BATCH:
                flush()
        if batch:
            flush()
        return out

    def video_logit(self, ev: VideoEvidence) -> float:
        """The calibrated-scale logit of the video: the larger of the mapped visual and
        voice logits."""
        z = float(self.visual_map(ev.visual))
        if ev.voice is not None:
            z = max(z, float(self.voice_map(ev.voice)))
        return z

    def logits(self, media: Sequence[Any]) -> np.ndarray:
        """Video logits of paths (what evaluation compares)."""
        return np.array([self.video_logit(self.evidence(m)) for m in media])

    # --- scoring --------------------------------------------------------------------------

    def score(  # type: ignore[override]
        self, inputs: VideoInput | Sequence[VideoInput], *, batch_size: int = 256
    ) -> list[ScoreResult]:
        """Score video paths or bytes; bad inputs get an error. ``frames`` is the timeline:
        ``{t, score, faces: [{box, score}], whole_frame}`` per sampled frame."""
        if isinstance(inputs, str | Path | bytes):
            inputs = [inputs]
        results = []
        for item in inputs:
            res = ScoreResult(
                source="<bytes>" if isinstance(item, bytes) else str(item),
                sha256=None,
                model={"name": self.name, "version": self.version},
            )
            t0 = time.perf_counter()
            try:
                res.sha256 = _sha256(item)
                ev = self.evidence(item)
            except MediaError as exc:
                res.error = exc.to_dict()
                results.append(res)
                continue
            except (FileNotFoundError, IsADirectoryError, PermissionError) as exc:
                res.error = MediaError("corrupt_media", f"{item}: {exc.strerror}").to_dict()
                results.append(res)
                continue
            self._fill(res, ev)
            res.timings_ms["model"] = round((time.perf_counter() - t0) * 1000, 3)
            results.append(res)
        return results

    def _fill(self, res: ScoreResult, ev: VideoEvidence) -> None:
        z = self.video_logit(ev)
        prob = float(self.calibration.probability(z))
        res.logit, res.score, res.verdict = z, prob, self.calibration.verdict(prob)
        res.media = ev.media
        frame_probs = self.calibration.probability(self.visual_map([f.logit for f in ev.frames]))
        res.frames = [
            {
                "t": round(f.t, 3),
                "score": float(p),
                "faces": [
                    {"box": box, "score": float(self.calibration.probability(self.visual_map(lg)))}
                    for box, lg in f.faces
                ],
                "whole_frame": f.whole,
            }
            for f, p in zip(ev.frames, frame_probs, strict=True)
        ]
        res.top_frame = int(np.argmax(frame_probs))
        res.segments = ev.voice_segments
        if ev.voice_segments:
            res.top_segment = int(np.argmax([s["score"] for s in ev.voice_segments]))
        visual = float(self.calibration.probability(self.visual_map(ev.visual)))
        voice = None
        if ev.voice is not None:
            voice = float(self.calibration.probability(self.voice_map(ev.voice)))
        res.parts = {"visual": visual, "voice": voice}


def _sha256(item: VideoInput) -> str:
    if isinstance(item, bytes):
        return hashlib.sha256(item).hexdigest()
    digest = hashlib.sha256()
    with Path(item).open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def scoring_dict(config: VideoScoringConfig) -> dict[str, Any]:
    return to_dict(config)
