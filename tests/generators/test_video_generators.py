"""Every built-in video generator, tiny, on short clips of real face photos (two people).

The clips are pan-and-zoom shots over the installed astronaut and Grace Hopper photos,
encoded to MP4 in the test run; one of them carries a real voice recording (alsa-utils'
``Front_Center.wav``) when it is installed.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from matplotlib import cbook
from PIL import Image
from skimage import data as skdata

from detector.media.audio import decode_audio, prepare_speech
from detector.media.video import VideoClip, encode_video
from generators import create, load_generator, save_generator
from generators.base import Samples
from generators.registry import family
from generators.sources.video import VideoItem, VideoSource, pan_zoom_clip
from generators.video._track import identity_key, main_face_runs
from generators.video.ae_swap import AESwap
from generators.video.faceswap import FaceSwap
from generators.video.selfblend import Changes, SelfBlend
from generators.video.voice_swap import VoiceSwap

FPS, SECONDS, SIZE = 10.0, 1.2, (128, 128)  # (width, height): the tiny max_side
VOICE = Path("/usr/share/sounds/alsa/Front_Center.wav")
FAMILIES = {
    "faceswap": "face_swap",
    "ae_swap": "autoencoder_swap",
    "selfblend": "self_blend",
    "voice_swap": "voice_swap",
}


@pytest.fixture(autouse=True, scope="module")
def _one_thread() -> Iterator[None]:
    """Tiny networks gain nothing from a second thread, and while another process keeps
    one of two cores busy, every two-thread OpenMP region waits on it: ae_swap's tiny fit
    took 1.6 s a step instead of 0.03."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _faces() -> dict[str, np.ndarray]:
    """The two photos cut around the face, so that pan-and-zoom keeps it in view."""
    path = cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)
    hopper = np.asarray(Image.open(path).convert("RGB"))
    return {"astronaut": skdata.astronaut()[0:300, 80:380], "hopper": hopper[20:420, 60:460]}


def _write(folder: Path, name: str, frames: np.ndarray, audio: np.ndarray | None) -> str:
    path = folder / f"{name}.mp4"
    path.write_bytes(encode_video(VideoClip(frames=frames, fps=FPS, audio=audio), crf=18))
    return str(path)


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> VideoSource:
    """Two clips of each person; the astronaut's first one has a voice track if installed."""
    folder = tmp_path_factory.mktemp("video")
    voice = None
    if VOICE.is_file():
        speech = prepare_speech(decode_audio(VOICE).samples).samples
        n = round(SECONDS * 16_000)
        voice = np.pad(speech[:n], (0, max(0, n - len(speech))))
    items = []
    for person, photo in _faces().items():
        for k in range(2):
            frames = pan_zoom_clip(photo, seconds=SECONDS, fps=FPS, size=SIZE, seed=k)
            audio = voice if (person, k) == ("astronaut", 0) else None
            origin = _write(folder, f"{person}-{k}", frames, audio)
            items.append(VideoItem(f"{person}-{k}", origin, person, 0.0, SECONDS))
    return VideoSource(spec="test", items=items)


def _check_clips(samples: Samples, source: VideoSource) -> list[tuple[VideoClip, VideoClip]]:
    """Each output clip beside the real clip it came from, after the shared checks."""
    assert samples.images is None and samples.videos is not None
    assert len(samples) == len(samples.sources) == len(samples.seeds)
    by_id = {it.id: it for it in source.items}
    pairs = []
    for clip, src in zip(samples.videos, samples.sources, strict=True):
        assert src is not None
        real = by_id[src].load(max_side=128)
        assert clip.frames.shape == real.frames.shape and clip.frames.dtype == np.uint8
        assert clip.fps == real.fps and len(clip.boxes) == len(clip.frames)
        pairs.append((clip, real))
    return pairs


def _check_face_swap(samples: Samples, source: VideoSource) -> None:
    """Faces found and changed in most frames, and nothing changed outside the boxes."""
    for clip, real in _check_clips(samples, source):
        if real.audio is None:
            assert clip.audio is None
        else:
            np.testing.assert_array_equal(clip.audio, real.audio)  # the real voice is kept
        swapped = 0
        for frame, before, boxes in zip(clip.frames, real.frames, clip.boxes, strict=True):
            diff = np.abs(frame.astype(int) - before).max(-1)
            inside = np.zeros(diff.shape, bool)
            for x, y, w, h in boxes:
                inside[y : y + h, x : x + w] = True
            assert not diff[~inside].any()  # every change inside a reported box
            if boxes:
                swapped += 1
                assert diff[inside].mean() > 4  # the face region really changed
        assert swapped >= len(clip.frames) // 2


def _same(a: Samples, b: Samples) -> None:
    assert a.sources == b.sources and a.seeds == b.seeds
    for x, y in zip(a.videos or [], b.videos or [], strict=True):
        np.testing.assert_array_equal(x.frames, y.frames)
        assert x.boxes == y.boxes


def test_registered_with_family_and_modality() -> None:
    for name, fam in FAMILIES.items():
        gen = create(name, preset="tiny")
        assert family(name) == fam and gen.family == fam
        assert gen.modality == "video" and gen.conditional
        assert gen.config.max_side == 128
        assert create(name, preset="tiny", max_side=96).config.max_side == 96
    with pytest.raises(ValueError, match="valid values"):
        create("faceswap", preset="tiny", blend="poisson")


def test_faceswap(clips: VideoSource, tmp_path: Path) -> None:
    gen = create("faceswap", preset="tiny")
    assert isinstance(gen, FaceSwap)
    report = gen.fit(clips)
    assert report.n_train >= 4 and report.final["identities"] == 2
    samples = gen.generate(2, seed=5, source=clips)
    _check_face_swap(samples, clips)
    for item_id, seed in zip(samples.sources, samples.seeds, strict=True):
        parent = next(it.parent for it in clips.items if it.id == item_id)
        donor = gen.choose_donor(parent, seed=seed)
        assert int(gen.bank.identity[donor]) != identity_key(parent)  # another person
    # Deterministic, and the bank travels in the checkpoint: a loaded copy makes the same
    # clips from the same seed.
    loaded = load_generator(save_generator(gen, tmp_path / "ckpt"))
    _same(samples, loaded.generate(2, seed=5, source=clips))


def test_selfblend(clips: VideoSource, tmp_path: Path) -> None:
    gen = create("selfblend", preset="tiny")
    assert isinstance(gen, SelfBlend)
    assert gen.fit(clips).steps == 0  # nothing to learn
    samples = gen.generate(3, seed=2, source=clips)
    _check_face_swap(samples, clips)  # the face changed, nothing outside its box
    # The person stays: the face is itself, moved by a few pixels and recoloured a little.
    for clip, real in _check_clips(samples, clips):
        for frame, before, boxes in zip(clip.frames, real.frames, clip.boxes, strict=True):
            for x, y, w, h in boxes:
                diff = np.abs(
                    frame[y : y + h, x : x + w].astype(int) - before[y : y + h, x : x + w]
                )
                assert diff.mean() < 40
    # One set of changes per clip, drawn from its seed: deterministic, and the same
    # through a checkpoint.
    _same(samples, gen.generate(3, seed=2, source=clips))
    loaded = load_generator(save_generator(gen, tmp_path / "ckpt"))
    _same(samples, loaded.generate(3, seed=2, source=clips))
    draws = {Changes.draw(gen.config, np.random.default_rng(s)) for s in range(20)}
    assert len(draws) == 20 and {d.blend for d in draws} == {"seamless", "feather"}
    with pytest.raises(ValueError, match="resample"):
        create("selfblend", preset="tiny", resample=(0.9, 0.5))


def test_a_clip_whose_face_cannot_be_followed_is_passed_over(
    clips: VideoSource, tmp_path: Path
) -> None:
    """A swap that would change fewer than half the frames is not emitted: the next clip
    is used, and a source with no clip to swap is refused."""
    coffee = pan_zoom_clip(skdata.coffee(), seconds=SECONDS, fps=FPS, size=SIZE, seed=0)
    faceless = VideoItem("coffee-0", _write(tmp_path, "coffee", coffee, None), "coffee", 0.0,
                         SECONDS)  # fmt: skip
    mixed = VideoSource(spec="mixed", items=[faceless, *clips.items[:1]])
    assert faceless in mixed.pick(2, seed=0)  # the plain order would use it
    gen = create("selfblend", preset="tiny")
    samples = gen.generate(2, seed=0, source=mixed)
    assert samples.sources == ["astronaut-0", "astronaut-0"]
    for clip in samples.videos or []:
        assert sum(1 for b in clip.boxes if b) >= len(clip.frames) / 2
    with pytest.raises(ValueError, match="no clip of 'coffee' has a face"):
        gen.generate(1, seed=0, source=VideoSource(spec="coffee", items=[faceless]))


def test_faceswap_needs_two_identities(clips: VideoSource) -> None:
    one = clips.subset([it.id for it in clips.items if it.parent == "hopper"])
    with pytest.raises(ValueError, match="at least two people"):
        create("faceswap", preset="tiny").generate(1, seed=0, source=one)


def test_ae_swap(clips: VideoSource, tmp_path: Path) -> None:
    gen = create("ae_swap", preset="tiny")
    assert isinstance(gen, AESwap)
    with pytest.raises(ValueError, match="not trained"):
        gen.generate(1, seed=0, source=clips)
    calls: list[tuple[int, int]] = []
    report = gen.fit(clips, on_step=lambda step, total, m: calls.append((step, total)))
    steps = gen.config.steps
    assert calls == [(i, steps) for i in range(1, steps + 1)]
    assert sorted(gen.identity_names) == ["astronaut", "hopper"]
    assert np.isfinite(report.final["loss"]) and report.n_train >= 8
    samples = gen.generate(2, seed=7, source=clips)
    _check_face_swap(samples, clips)
    for item_id, seed in zip(samples.sources, samples.seeds, strict=True):
        parent = next(it.parent for it in clips.items if it.id == item_id)
        other = gen.identity_names[gen.decoder_for(parent, seed=seed)]
        assert other != parent  # drawn by the other person's decoder
    # Deterministic, and the networks and who they draw travel in the checkpoint.
    loaded = load_generator(save_generator(gen, tmp_path / "ckpt"))
    assert isinstance(loaded, AESwap) and loaded.identity_keys == gen.identity_keys
    _same(samples, loaded.generate(2, seed=7, source=clips))


@pytest.mark.skipif(not VOICE.is_file(), reason="alsa-utils' voice recordings are absent")
def test_voice_swap(clips: VideoSource) -> None:
    gen = create("voice_swap", preset="tiny")
    assert isinstance(gen, VoiceSwap) and gen.fit(clips).steps == 0
    samples = gen.generate(2, seed=3, source=clips)
    assert samples.sources == ["astronaut-0"] * 2  # the only clip with a voice
    for clip, real in _check_clips(samples, clips):
        np.testing.assert_array_equal(clip.frames, real.frames)
        assert clip.boxes == [[] for _ in clip.frames]  # no face changed
        assert real.audio is not None and clip.audio is not None
        assert clip.audio.shape == real.audio.shape and clip.audio.dtype == np.float32
        assert clip.sample_rate == 16_000
        assert np.abs(clip.audio - real.audio).mean() > 1e-3
    again = gen.generate(2, seed=3, source=clips)
    for x, y in zip(samples.videos or [], again.videos or [], strict=True):
        np.testing.assert_array_equal(x.audio, y.audio)


def test_voice_swap_refuses_clips_without_voice(clips: VideoSource) -> None:
    silent = clips.subset([it.id for it in clips.items if it.id != "astronaut-0"])
    gen = create("voice_swap", preset="tiny")
    with pytest.raises(ValueError, match="cannot be voice-swapped"):
        gen.generate(1, seed=0, source=silent)
    with pytest.raises(ValueError, match="valid values"):
        create("voice_swap", preset="tiny", vocoder="faceswap")


def test_main_face_runs_drop_a_weaker_face() -> None:
    face, other = (10.0, 10.0, 20.0, 20.0), (60.0, 10.0, 30.0, 30.0)
    boxes = [face, face, None, other, other, other, None, face]
    scores = [6.0, 7.0, 0.0, 2.0, 2.5, 2.0, 0.0, 5.0]
    # The main face's runs stay (also after it was lost); the long weak one goes.
    assert main_face_runs(boxes, scores) == [True, True, False, False, False, False, False, True]


@pytest.mark.parametrize("name", ["faceswap", "ae_swap", "selfblend"])
def test_face_generators_check_their_tracking_settings(name: str) -> None:
    for bad, field in (
        ({"detect_side": 16}, "detect_side"),
        ({"detect_every": 0}, "detect_every"),
        ({"track_alpha": 0.0}, "track_alpha"),
        ({"max_gap": -1}, "max_gap"),
    ):
        with pytest.raises(ValueError, match=field):
            create(name, preset="tiny", **bad)


def test_self_blended_crop_changes_the_face_and_keeps_the_margin() -> None:
    from detector.media.faces import detect_faces, face_crop
    from generators.video.selfblend import self_blended_crop

    img = skdata.astronaut()
    crop = face_crop(img, detect_faces(img)[0], margin=0.3, size=128)
    a = self_blended_crop(crop, np.random.default_rng(0), margin=0.3)
    assert a.shape == crop.shape and a.dtype == np.uint8
    diff = np.abs(a.astype(int) - crop).sum(axis=2)
    face = slice(24, 104)  # the face box: 128 / 1.6 = 80 pixels in the middle
    assert diff[face, face].mean() > 3 * diff.mean() / 2  # the change is on the face
    edge = np.ones_like(diff, dtype=bool)
    edge[20:108, 20:108] = False
    assert diff[edge].max() == 0  # the margin around the face is the real crop's
    assert np.array_equal(a, self_blended_crop(crop, np.random.default_rng(0), margin=0.3))
    b = self_blended_crop(crop, np.random.default_rng(1), margin=0.3)
    assert not np.array_equal(a, b)  # a new fake at every draw
