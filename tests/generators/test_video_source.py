"""Real video sources: folders cut into clips, the starter clips, camera-like motion."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest
from skimage import data as skdata

from detector.media.faces import detect_faces
from detector.media.video import SAMPLE_RATE, SamplingConfig, VideoClip, encode_video, sample_frames
from generators.corpus.splits import split_items
from generators.sources import VideoSource, open_source
from generators.sources.video import (
    open_video_folder,
    pan_zoom_clip,
    starter_video_source,
)

FPS = 5.0


def _video(seconds: float, *, seed: int = 0, audio: bool = False) -> bytes:
    frames = pan_zoom_clip(skdata.astronaut(), seconds=seconds, fps=FPS, size=(64, 48), seed=seed)
    tone = None
    if audio:
        t = np.arange(round(seconds * SAMPLE_RATE)) / SAMPLE_RATE
        tone = (0.3 * np.sin(2 * np.pi * 300 * t)).astype(np.float32)
    return encode_video(VideoClip(frames=frames, fps=FPS, audio=tone), preset="ultrafast")


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("videos")
    (root / "long.mp4").write_bytes(_video(9.0, audio=True))  # 4 + 4 + 1 s
    (root / "sub").mkdir()
    (root / "sub" / "named-wrong.txt").write_bytes(_video(3.0, seed=1))  # content decides
    (root / "short.mp4").write_bytes(_video(0.6, seed=2))
    (root / "notes.mp4").write_text("not a video at all\n" * 10)
    (root / "empty.mkv").write_bytes(b"")
    # An MP4 whose index is at its end, cut in half (a failed download).
    path = root / "cut.mp4"
    with av.open(str(path), "w", format="mp4") as c:
        s = c.add_stream("libx264", rate=25)
        s.width, s.height, s.pix_fmt = 64, 48, "yuv420p"
        rng = np.random.default_rng(0)
        for _ in range(20):
            rgb = rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)
            c.mux(s.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")))
        c.mux(s.encode(None))
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    return root


def test_folder_cut_into_clips(folder: Path) -> None:
    seen: list[str] = []
    source = open_video_folder(folder, on_file=lambda i, p: seen.append(p.name))
    assert isinstance(source, VideoSource) and source.modality == "video"
    assert len(seen) == 6
    assert [it.id for it in source.items] == [
        "long.mp4#0",
        "long.mp4#1",
        "long.mp4#2",
        "sub/named-wrong.txt#0",
    ]
    assert [(it.start_s, it.end_s) for it in source.items[:3]] == [(0, 4), (4, 8), (8, 9)]
    assert source.items[3].end_s == pytest.approx(3.0)
    assert source.parents() == ["long.mp4", "sub/named-wrong.txt"]
    assert {s.path: s.code for s in source.skipped} == {
        "cut.mp4": "corrupt_media",
        "empty.mkv": "empty",
        "notes.mp4": "unsupported_media",
        "short.mp4": "too_short",
    }
    assert all(s.message for s in source.skipped)
    assert source.skipped_summary()["corrupt_media"] == 1
    # Fewer, longer clips; a last partial clip only when long enough.
    two = open_video_folder(folder, clip_seconds=2.0, max_clips=2)
    assert [it.id for it in two.items] == [
        "long.mp4#0",
        "long.mp4#1",
        "sub/named-wrong.txt#0",
        "sub/named-wrong.txt#1",
    ]
    assert two.items[-1].end_s == pytest.approx(3.0)  # 2 s + the last 1 s
    strict = open_video_folder(folder, min_seconds=1.5)
    assert [it.id for it in strict.items] == ["long.mp4#0", "long.mp4#1", "sub/named-wrong.txt#0"]
    with pytest.raises(ValueError):
        open_video_folder(folder / "missing")
    with pytest.raises(ValueError):
        open_video_folder(folder, min_seconds=5.0)


def test_clip_loads_its_window(folder: Path) -> None:
    source = open_video_folder(folder)
    clip = source.items[1].load()
    assert clip.frames.shape == (20, 48, 64, 3) and clip.fps == pytest.approx(FPS)
    assert clip.audio is not None and len(clip.audio) == 4 * SAMPLE_RATE
    last = source.items[2].load(max_side=32)
    assert last.frames.shape == (5, 24, 32, 3)
    assert source.items[3].load().audio is None


def test_pick_and_splits_by_parent(folder: Path) -> None:
    source = open_video_folder(folder, clip_seconds=1.0)
    assert len(source) == 8 + 3  # long.mp4: max_clips; the other: 3 s
    picked = source.pick(len(source), seed=3)
    assert sorted(it.id for it in picked) == sorted(it.id for it in source.items)
    assert source.pick(5, seed=3) == picked[:5] and source.pick(5, seed=4) != picked[:5]
    twice = source.pick(2 * len(source) + 1, seed=1)
    assert all(twice.count(it) in (2, 3) for it in source.items)
    # Splits are drawn over parents, so no video has clips on two sides.
    assert source.parents() == ["long.mp4", "sub/named-wrong.txt"]
    split_of = split_items(source.parents(), (0.5, 0.0, 0.5), seed=0)
    assert set(split_of.values()) == {"train", "test"}
    train = source.subset([it.id for it in source.items if split_of[it.parent] == "train"])
    test = source.subset([it.id for it in source.items if split_of[it.parent] == "test"])
    assert len(train) + len(test) == len(source)
    assert not set(train.parents()) & set(test.parents())  # no video on both sides
    empty = VideoSource(spec="none", items=[])
    with pytest.raises(ValueError, match="no usable video"):
        empty.pick(1, seed=0)


def test_photos_become_clips_around_their_face(tmp_path: Path) -> None:
    from PIL import Image

    Image.fromarray(skdata.astronaut()).save(tmp_path / "astronaut.jpg", quality=92)
    Image.fromarray(skdata.coffee()).save(tmp_path / "coffee.png")  # no face
    Image.fromarray(skdata.astronaut()[:40, :40]).save(tmp_path / "tiny.png")  # too small
    # Her face (93 px at 177, 67) in a 116 px crop: 1.25 face sides, no room to pan.
    Image.fromarray(skdata.astronaut()[55:171, 165:281]).save(tmp_path / "tight.png")
    (tmp_path / "clip.mp4").write_bytes(_video(2.0, audio=True))
    whole = (tmp_path / "astronaut.jpg").read_bytes()
    (tmp_path / "broken.jpg").write_bytes(whole[: len(whole) // 3])  # a cut download
    source = open_video_folder(tmp_path, clip_seconds=1.2)
    assert [it.id for it in source.items] == ["astronaut.jpg#0", "clip.mp4#0"]
    photo, video = source.items
    assert photo.parent == "astronaut.jpg" and photo.photo_face is not None
    assert (photo.start_s, photo.end_s) == (0.0, 1.2) and video.photo_face is None
    assert {s.path: s.code for s in source.skipped} == {
        "broken.jpg": "corrupt_media",
        "coffee.png": "no_face",
        "tiny.png": "no_face",
        "tight.png": "tight_crop",
    }
    clip = photo.load(max_side=128)
    assert clip.frames.shape == (30, 128, 128, 3) and clip.fps == pytest.approx(25.0)
    assert clip.audio is None and photo.voice() is None
    assert video.voice() is not None
    assert np.array_equal(photo.load(max_side=128).frames, clip.frames)  # deterministic
    # The camera frames the face: it is found in every frame, moving a little.
    boxes = [detect_faces(f) for f in clip.frames[::5]]
    assert all(boxes)
    centres = [(b[0].x + b[0].w / 2, b[0].y + b[0].h / 2) for b in boxes]
    assert all(30 < x < 98 and 30 < y < 98 for x, y in centres)
    assert not np.array_equal(clip.frames[0], clip.frames[-1])
    assert [it.id for it in open_video_folder(tmp_path, photos=False).items] == ["clip.mp4#0"]


def test_open_source_video(folder: Path) -> None:
    source = open_source(str(folder), modality="video", clip_seconds=3.0, max_clips=1)
    assert isinstance(source, VideoSource)
    assert [it.id for it in source.items] == ["long.mp4#0", "sub/named-wrong.txt#0"]
    with pytest.raises(ValueError, match="video"):
        open_source(str(folder), modality="hologram")


def test_pan_zoom_clip() -> None:
    photo = skdata.astronaut()
    clip = pan_zoom_clip(photo, seconds=1.0, fps=10.0, size=(80, 60), seed=5)
    assert clip.shape == (10, 60, 80, 3) and clip.dtype == np.uint8
    assert np.array_equal(clip, pan_zoom_clip(photo, seconds=1.0, fps=10.0, size=(80, 60), seed=5))
    other = pan_zoom_clip(photo, seconds=1.0, fps=10.0, size=(80, 60), seed=6)
    assert not np.array_equal(clip, other)
    # Smooth: neighbouring frames differ far less than the first and last do.
    steps = [np.abs(clip[i + 1].astype(int) - clip[i]).mean() for i in range(9)]
    assert max(steps) < np.abs(clip[-1].astype(int) - clip[0]).mean()
    # Real content: the photo's colours, no padding.
    assert abs(clip.mean() - photo.mean()) < 25
    with pytest.raises(ValueError):
        pan_zoom_clip(photo, zoom=(0.5, 1.0))


def test_starter_cache(tmp_path: Path) -> None:
    source = starter_video_source(tmp_path, clips_per_photo=1, seconds=1.0, side=160)
    assert source.spec == "starter" and len(source) == 2 and not source.skipped
    assert source.parents() == ["starter:astronaut", "starter:grace_hopper"]
    assert all(it.license and it.end_s == pytest.approx(1.0) for it in source.items)
    files = sorted(tmp_path.rglob("*"))
    assert [f.name for f in files if f.is_file()] == ["astronaut-0.mp4", "grace_hopper-0.mp4"]
    stamps = {f: f.stat().st_mtime_ns for f in files if f.is_file()}
    again = starter_video_source(tmp_path, clips_per_photo=1, seconds=1.0, side=160)
    assert again.items == source.items
    assert {f: f.stat().st_mtime_ns for f in stamps} == stamps  # reused, not rewritten
    clip = source.items[0].load()
    assert clip.frames.shape == (25, 160, 160, 3) and clip.fps == pytest.approx(25.0)
    # The astronaut's face, moving (at times partly out of the frame: most frames, not all).
    assert sum(bool(detect_faces(f)) for f in clip.frames) >= len(clip.frames) // 2
    with sample_frames(source.items[1].origin, SamplingConfig(mode="uniform", n=2)) as frames:
        assert all(detect_faces(f.pixels) for f in frames)  # Grace Hopper's


@pytest.mark.shared_data
def test_shared_faces_folder(shared_data: Path) -> None:
    faces = shared_data / "real_video" / "faces"
    if not faces.is_dir():
        pytest.skip(f"{faces} is absent")
    source = open_video_folder(faces, clip_seconds=2.0, max_clips=1)
    assert len(source) > 0 and not source.skipped
    item = source.items[0]
    with sample_frames(item.origin, SamplingConfig(mode="uniform", n=3, max_side=480)) as frames:
        assert any(detect_faces(f.pixels) for f in frames)
