"""Video corpora: the real builder with the built-in video generators (tiny presets)."""

from __future__ import annotations

import json
from collections import defaultdict

import pytest

from detector.media.video import probe_video
from generators.corpus.builder import CorpusConfig, build_corpus
from generators.corpus.encoding import VideoEncodingConfig, choose_video_encoding
from generators.corpus.manifest import read_manifest


def test_rows_describe_every_clip(tiny_video_corpus):
    rows = read_manifest(tiny_video_corpus)
    real = [r for r in rows if r.label == "real"]
    assert len(real) == 6
    assert {r.generator_name for r in rows if r.label == "synthetic"} == {
        "faceswap",
        "ae_swap",
        "voice_swap",
    }
    for r in rows:
        info = probe_video(tiny_video_corpus / r.path)
        assert (info.width, info.height) == (r.width, r.height) == (160, 160)
        assert r.modality == "video" and r.format == "mp4"
        assert r.fps == pytest.approx(info.fps) == pytest.approx(10.0)
        assert r.frames == 20 and r.duration_s == pytest.approx(2.0)
        assert r.has_audio == info.has_audio
        if r.label == "synthetic":
            assert r.boxes is not None and len(r.boxes) == r.frames
        else:
            assert r.boxes is None


def test_fakes_are_encoded_like_their_real_clip(tiny_video_corpus):
    rows = read_manifest(tiny_video_corpus)
    real_by_source = {r.source_item: r for r in rows if r.label == "real"}
    for r in rows:
        if r.label != "synthetic":
            continue
        twin = real_by_source[r.source_item]
        assert r.encoding == twin.encoding  # same codec, CRF, preset, audio bitrate
        assert (r.fps, r.width, r.height, r.frames) == (twin.fps, twin.width, twin.height,
                                                         twin.frames)  # fmt: skip
        assert r.split == twin.split


def test_swaps_change_faces_and_voice_swap_only_the_voice(tiny_video_corpus):
    rows = read_manifest(tiny_video_corpus)
    changed = defaultdict(int)
    for r in rows:
        if r.label == "synthetic":
            changed[r.generator_name] += sum(bool(b) for b in r.boxes)
    assert changed["faceswap"] > 0 and changed["ae_swap"] > 0
    assert changed["voice_swap"] == 0
    assert all(r.has_audio for r in rows if r.generator_name == "voice_swap")


def test_splits_follow_the_source_video(tiny_video_corpus):
    meta = json.loads((tiny_video_corpus / "corpus.json").read_text())
    splits_of_parent = defaultdict(set)
    for clip_id, split in meta["photo_splits"].items():
        splits_of_parent[clip_id.split("#")[0]].add(split)
    assert all(len(s) == 1 for s in splits_of_parent.values())
    assert set().union(*splits_of_parent.values()) == {"train", "val", "test"}
    audit = meta["audit"]
    assert audit["auc_crf"] is not None and abs(audit["auc_crf"] - 0.5) < 0.2
    assert audit["auc_fps"] == 0.5 and audit["auc_duration"] == 0.5


def test_encoding_is_drawn_from_the_real_clip_id_only():
    cfg = VideoEncodingConfig(crf=(18, 30))
    a = choose_video_encoding(cfg, corpus_seed=0, source_item="clip#0")
    assert a == choose_video_encoding(cfg, corpus_seed=0, source_item="clip#0")
    crfs = {choose_video_encoding(cfg, corpus_seed=0, source_item=f"c#{i}").crf for i in range(40)}
    assert min(crfs) >= 18 and max(crfs) <= 30 and len(crfs) > 5
    with pytest.raises(ValueError, match="crf"):
        VideoEncodingConfig(crf=(30, 18))


def test_extending_adds_only_missing_generators(tmp_path, tiny_video_corpus):
    import shutil

    corpus = tmp_path / "c"
    shutil.copytree(tiny_video_corpus, corpus)
    meta = json.loads((corpus / "corpus.json").read_text())["config"]
    config = CorpusConfig(
        modality="video",
        real=meta["real"],
        generators=("faceswap",),
        per_generator=6,
        preset="tiny",
        video=VideoEncodingConfig(max_side=160, clip_seconds=2.0, max_clips=1),
        splits=(0.5, 0.25, 0.25),
    )
    report = build_corpus(config, corpus)
    assert report.skipped == ["faceswap"] and report.added == {}
    with pytest.raises(ValueError, match="settings differ"):
        build_corpus(
            CorpusConfig(
                modality="video",
                real=meta["real"],
                generators=("faceswap",),
                per_generator=6,
                preset="tiny",
                video=VideoEncodingConfig(max_side=128, clip_seconds=2.0, max_clips=1),
                splits=(0.5, 0.25, 0.25),
            ),
            corpus,
        )


def test_image_generator_refused_in_a_video_corpus():
    with pytest.raises(ValueError, match="makes image"):
        CorpusConfig(modality="video", generators=("gan_tconv",), per_generator=2)


def test_a_folder_of_fake_videos_joins_as_a_generator(tmp_path, tiny_video_corpus):
    """--fakes for video: another tool's outputs, cut and encoded like the real clips."""
    from generators.corpus.fakes import parse_fakes

    fakes_dir = tmp_path / "made-elsewhere"
    fakes_dir.mkdir()
    for p in sorted((tiny_video_corpus / "synthetic" / "faceswap").rglob("*.mp4"))[:4]:
        (fakes_dir / p.name).write_bytes(p.read_bytes())
    (fakes_dir / "notes.txt").write_text("not a video")
    meta = json.loads((tiny_video_corpus / "corpus.json").read_text())["config"]
    config = CorpusConfig(
        modality="video",
        real=meta["real"],
        generators=(),
        fakes=(parse_fakes(f"elsewhere={fakes_dir}:external_swap"),),
        per_generator=4,
        video=VideoEncodingConfig(max_side=128, clip_seconds=2.0, max_clips=1),
        splits=(0.5, 0.25, 0.25),
    )
    report = build_corpus(config, tmp_path / "corpus")
    assert report.added == {"real": 6, "elsewhere": 4}
    assert report.fakes["elsewhere"]["skipped"] == {"unsupported_media": 1}
    rows = [r for r in read_manifest(tmp_path / "corpus") if r.generator_name == "elsewhere"]
    assert {r.generator_family for r in rows} == {"external_swap"}
    for r in rows:
        assert r.boxes is None  # what changed is not known: every face counts
        assert max(r.width, r.height) == 128 and r.format == "mp4"


def test_cli_builds_a_video_corpus(tmp_path, tiny_video_corpus):
    from typer.testing import CliRunner

    from api.cli import app

    real = json.loads((tiny_video_corpus / "corpus.json").read_text())["config"]["real"]
    args = ["corpus", "build", "--modality", "video", "--real", real, "--generators",
            "faceswap", "--preset", "tiny", "--per-generator", "2", "--max-side", "96",
            "--clip-seconds", "1", "--max-clips", "1", "--crf", "20-24",
            "--out", str(tmp_path / "c")]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "CRF" in result.output and "frame rate" in result.output  # the video audit
    rows = read_manifest(tmp_path / "c")
    assert {r.encoding["crf"] for r in rows} <= set(range(20, 25))
    assert all(max(r.width, r.height) == 96 and r.duration_s == pytest.approx(1.0) for r in rows)
    bad = CliRunner().invoke(app, [*args[:-2], "--crf", "high", "--out", str(tmp_path / "d")])
    assert bad.exit_code == 2 and "--crf" in bad.output
