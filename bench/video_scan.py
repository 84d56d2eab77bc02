"""Video scan speed: a 60 s 720p clip at the default sampling, as a multiple of real time
and against the raw batched forward pass on the same crops.

    python -m bench.video_scan [--model DIR] [--seconds 60] [--threads 2] [--detect-every K]

The clip is made here: a slow pan and zoom over a real face photograph (the largest
face photo in ``../shared/data/real_images/faces`` when present, else scikit-image's
astronaut), framed like a talking head (a 16:9 view about four faces wide around the
face), at 1280x720, 25 fps, H.264 CRF 23, with a voice track (alsa-utils' recording
repeated, when installed). The pipeline is ``VideoDetector.score(path)``: probe, decode
and sample frames, find faces, crop, the face model, the voice track through the voice
model, calibration and the timeline. The baseline is the face model's batched forward
pass on the very crops the pipeline scored (face crops and whole frames, already cut).
The pipeline's stages are timed once more, apart, to say where the time goes.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from detector.inference import Detector
from detector.inference.batch import score_pixels
from detector.inference.video import VideoDetector
from detector.inference.video_faces import stream_faces
from detector.media.video import VideoClip, decode_audio_track, encode_video, sample_frames

SHARED_FACES = Path(__file__).resolve().parents[2] / "shared" / "data" / "real_images" / "faces"


def photo() -> tuple[np.ndarray, str]:
    from PIL import Image

    if SHARED_FACES.is_dir():
        best = max(SHARED_FACES.glob("deepface_img*.jpg"), key=lambda p: p.stat().st_size)
        return np.asarray(Image.open(best).convert("RGB")), best.name
    from skimage import data

    return data.astronaut(), "skimage astronaut"


def voice(seconds: float) -> np.ndarray | None:
    from detector.media.audio import decode_audio
    from generators.sources.audio import ALSA_SOUNDS

    wav = ALSA_SOUNDS / "Front_Center.wav"
    if not wav.is_file():
        return None
    y = decode_audio(wav).samples
    n = round(seconds * 16_000)
    return np.tile(np.pad(y, (0, 8000)), n // (len(y) + 8000) + 1)[:n]


def talking_head_view(img: np.ndarray) -> np.ndarray:
    """A 16:9 part of the photo around its face, about four faces wide: how a talking
    head fills a 720p frame."""
    from detector.media.faces import detect_faces

    ih, iw = img.shape[:2]
    faces = detect_faces(img, max_faces=1, work_side=640)
    if not faces:
        return img
    f = faces[0]
    w = min(iw, 4 * f.w, round(ih * 16 / 9))
    h = round(w * 9 / 16)
    x0 = int(np.clip(f.x + f.w / 2 - w / 2, 0, iw - w))
    y0 = int(np.clip(f.y + f.h / 2 - h / 2, 0, ih - h))
    return img[y0 : y0 + h, x0 : x0 + w]


def make_clip(path: Path, seconds: float, fps: float = 25.0) -> None:
    from generators.sources.video import pan_zoom_clip

    img, _name = photo()
    frames = pan_zoom_clip(
        talking_head_view(img), seconds=seconds, fps=fps, size=(1280, 720), zoom=(1.0, 1.25)
    )
    clip = VideoClip(frames, fps, audio=voice(seconds))
    path.write_bytes(encode_video(clip, crf=23, preset="veryfast"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=None, help="video model folder (default: the shipped)")
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument(
        "--detect-every", type=int, default=None, help="override the model's face-search interval"
    )
    ap.add_argument("--json", default="bench/results/video_scan.json")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    det = Detector.load(args.model, modality="video")
    assert isinstance(det, VideoDetector)
    if args.detect_every is not None:
        det.scoring = dataclasses.replace(det.scoring, detect_every=args.detect_every)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "clip.mp4"
        t0 = time.perf_counter()
        make_clip(path, args.seconds)
        made_s = time.perf_counter() - t0

        # The crops the pipeline scores, cut once (untimed) for the baseline.
        crops: list[np.ndarray] = []
        n_frames = n_faces = n_searched = 0
        every = det.scoring.detect_every
        with sample_frames(path, det.scoring.sampling) as stream:
            for f in stream_faces(stream, det.scoring.crop, every=every):
                n_frames += 1
                n_faces += len(f.faces)
                n_searched += f.searched
                crops += [c for _b, c in f.faces] or [f.whole]

        def raw() -> None:
            score_pixels(det.model, crops, size=det.input_size, max_crops=det.max_crops)

        def pipeline() -> None:
            res = det.score(path)[0]
            assert res.error is None, res.error

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

        # Where the time goes, stage by stage (each timed alone).
        t0 = time.perf_counter()
        frames = list(sample_frames(path, det.scoring.sampling))
        t_decode = time.perf_counter() - t0
        t0 = time.perf_counter()
        for _ in stream_faces(frames, det.scoring.crop, every=every):
            pass
        t_faces = time.perf_counter() - t0
        t0 = time.perf_counter()
        audio = decode_audio_track(path)
        if audio is not None and det.voice is not None:
            det.voice.score(audio)
        t_voice = time.perf_counter() - t0

    pipe, base = min(t_pipe), min(t_raw)
    result = {
        "benchmark": "video_scan",
        "model": det.name,
        "version": det.version,
        "clip": {
            "seconds": args.seconds,
            "size": "1280x720",
            "fps": 25,
            "photo": photo()[1],
            "made_in_s": round(made_s, 1),
        },
        "sampling": {
            "fps": det.scoring.sampling.fps,
            "frames": n_frames,
            "detect_every": every,
            "frames_searched": n_searched,
            "faces": n_faces,
            "crops": len(crops),
        },
        "threads": args.threads,
        "pipeline_s": round(pipe, 3),
        "raw_forward_s": round(base, 4),
        "pipeline_x_realtime": round(args.seconds / pipe, 2),
        "ratio": round(base / pipe, 4),
        "stages_s": {
            "decode_and_sample": round(t_decode, 3),
            "face_detection_and_crops": round(t_faces, 3),
            "voice_track": round(t_voice, 3),
            "face_model": round(base, 3),
        },
        "target_ratio": 0.7,
        "target_x_realtime": 2.0,
    }
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    s = result["stages_s"]
    print(
        f"{args.seconds:.0f} s 720p clip, {n_frames} frames sampled ({n_searched} searched "
        f"for faces), {n_faces} faces, "
        f"{args.threads} thread(s): scan {pipe:.2f} s = {result['pipeline_x_realtime']:.1f}x "
        f"real time (target >= 2); raw forward on the same {len(crops)} crops {base:.3f} s; "
        f"ratio {result['ratio']:.3f} (target >= 0.7). Stages: decode+sample "
        f"{s['decode_and_sample']:.2f} s, faces {s['face_detection_and_crops']:.2f} s, voice "
        f"{s['voice_track']:.2f} s, face model {s['face_model']:.2f} s"
    )


if __name__ == "__main__":
    main()
