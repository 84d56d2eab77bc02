"""Tiny real-content videos made in the test run from installed photographs.

Two real faces ship with installed packages: scikit-image's astronaut and matplotlib's
Grace Hopper. Each becomes several short pan-and-zoom clips (a camera moving over a
still photo: real content, camera-like motion), some with a speech-like voice track,
so video tests need nothing outside the repository.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np


def face_photos() -> dict[str, np.ndarray]:
    from matplotlib import cbook
    from PIL import Image
    from skimage import data

    with cbook.get_sample_data("grace_hopper.jpg") as f:
        hopper = np.asarray(Image.open(f).convert("RGB"))
    return {"astronaut": data.astronaut(), "hopper": hopper}


def write_face_videos(
    out: Path,
    *,
    per_photo: int = 3,
    seconds: float = 2.0,
    fps: float = 10.0,
    size: tuple[int, int] = (160, 160),
    voice: bool = True,
) -> list[Path]:
    """``per_photo`` clips of each face photo (different pans), MP4 H.264; every other
    clip has a voice track: a real recording (alsa-utils' voice clips) where installed,
    else a speech-like signal."""
    from detector.media.video import VideoClip, encode_video
    from generators.sources.video import pan_zoom_clip

    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, photo in face_photos().items():
        for k in range(per_photo):
            frames = pan_zoom_clip(
                photo, seconds=seconds, fps=fps, size=size, zoom=(1.0, 1.15), seed=k
            )
            audio = _voice(k, len(frames) / fps) if voice and k % 2 == 0 else None
            data = encode_video(VideoClip(frames, fps, audio=audio), crf=20)
            path = out / f"{name}-{k}.mp4"
            path.write_bytes(data)
            paths.append(path)
    return paths


def _voice(k: int, seconds: float) -> np.ndarray:
    from detector.media.audio import decode_audio
    from generators.sources.audio import ALSA_SOUNDS
    from tests._audio import speech_like

    n = round(seconds * 16_000)
    clips = sorted(ALSA_SOUNDS.glob("Front_*.wav")) + sorted(ALSA_SOUNDS.glob("Rear_*.wav"))
    if not clips:
        return speech_like(k, seconds)
    y = decode_audio(clips[k % len(clips)]).samples
    return np.pad(y, (0, max(0, n - len(y))))[:n]


def build_tiny_video_corpus(out: Path) -> Path:
    """A video corpus made by the real builder and the three video generators (tiny
    presets) from six 2-second clips of two real faces."""
    from generators.corpus.builder import CorpusConfig, build_corpus
    from generators.corpus.encoding import VideoEncodingConfig

    real = write_face_videos(out.parent / f"{out.name}-real")[0].parent
    config = CorpusConfig(
        modality="video",
        real=str(real),
        generators=("faceswap", "ae_swap", "voice_swap"),
        per_generator=6,
        preset="tiny",
        video=VideoEncodingConfig(max_side=160, clip_seconds=2.0, max_clips=1),
        splits=(0.5, 0.25, 0.25),
    )
    build_corpus(config, out)
    return out


def train_tiny_video_model(corpus: Path, out: Path) -> Path:
    from detector.train.video import train_video_detector

    train_video_detector([corpus], out, preset="tiny", train_overrides={"epochs": 3})
    return out
