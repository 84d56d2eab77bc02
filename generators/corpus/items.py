"""Writing corpus items: real and synthetic images, recordings and videos, each through
the corpus's one final encoding, each with its manifest row."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

from generators.base import Generator, Samples
from generators.corpus.encoding import (
    choose_audio_encoding,
    choose_encoding,
    choose_video_encoding,
    encode_clip,
    encode_image,
    encode_video_item,
)
from generators.corpus.manifest import ManifestRow
from generators.corpus.splits import draw_splits
from generators.registry import family
from generators.sources import AudioSource, RealSource

if TYPE_CHECKING:
    from generators.corpus.builder import CorpusConfig, ProgressFn
    from generators.sources.video import VideoSource

CHUNK = 256  # items generated, encoded and written per step
AUDIO_CHUNK = 16  # clips generated, prepared, encoded and written per step


def write_item(
    out: Path, rel_dir: str, item_id: str, pixels: Any, config: CorpusConfig
) -> tuple[str, dict[str, Any]]:
    enc = choose_encoding(config.encoding, corpus_seed=config.seed, item_id=item_id)
    data = encode_image(pixels, enc)
    rel = f"{rel_dir}/{item_id}{enc.extension}"
    (out / rel).parent.mkdir(parents=True, exist_ok=True)
    (out / rel).write_bytes(data)
    h, w = pixels.shape[:2]
    return rel, {
        "format": enc.format,
        "width": w,
        "height": h,
        "encoding": enc.to_dict(),
        "bytes": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
    }


def write_real(
    out: Path,
    config: CorpusConfig,
    source: RealSource,
    split_of: dict[str, str],
    progress: ProgressFn,
) -> list[ManifestRow]:
    n = config.real_count
    usable = source.subset(list(split_of))
    rows = []
    crops = usable.crops(n, size=config.encoding.size, seed=config.seed, scales=config.scales)
    for i, crop in enumerate(crops):
        item_id = f"real-{i:06d}"
        split = split_of[crop.parent]
        rel, facts = write_item(out, f"real/{split}", item_id, crop.image, config)
        rows.append(real_row(item_id, rel, facts, config, split, i, crop.parent))
        if i % 64 == 0 or i == n - 1:
            progress("real", i + 1, n, {})
    return rows


def real_row(
    item_id: str,
    rel: str,
    facts: dict[str, Any],
    config: CorpusConfig,
    split: str,
    index: int,
    source_item: str,
) -> ManifestRow:
    return ManifestRow(
        id=item_id,
        path=rel,
        label="real",
        modality=config.modality,
        split=split,
        generator_family=None,
        generator_name=None,
        config_hash=None,
        seed=config.seed,
        index=index,
        source_item=source_item,
        **facts,
    )


def synthetic_row(
    item_id: str,
    rel: str,
    facts: dict[str, Any],
    config: CorpusConfig,
    split: str,
    name: str,
    family_: str,
    config_hash: str | None,
    seed: int,
    index: int,
    source_item: str | None,
    *,
    segments: list[list[float]] | None = None,
) -> ManifestRow:
    """The manifest row of a synthetic item (a generator's, or a fakes folder's)."""
    return ManifestRow(
        id=item_id,
        path=rel,
        label="synthetic",
        modality=config.modality,
        split=split,
        generator_family=family_,
        generator_name=name,
        config_hash=config_hash,
        seed=seed,
        index=index,
        source_item=source_item,
        segments=segments,
        **facts,
    )


def write_synthetic(
    out: Path,
    config: CorpusConfig,
    gen: Generator,
    source: RealSource,
    split_of: dict[str, str],
    progress: ProgressFn,
) -> list[ManifestRow]:
    n = config.per_generator
    # Per-generator seeds: a corpus extended later gets the same items it would have had.
    base_seed = int(hashlib.sha256(f"{config.seed}:{gen.name}".encode()).hexdigest()[:8], 16)
    unconditional_splits = draw_splits(n, config.splits, seed=base_seed)
    usable = source.subset(list(split_of))
    rows: list[ManifestRow] = []
    for start in range(0, n, CHUNK):
        count = min(CHUNK, n - start)
        seed = base_seed + start
        samples: Samples = gen.generate(
            count, seed=seed, source=usable if gen.conditional else None
        )
        if samples.images.shape[1:] != (config.encoding.size, config.encoding.size, 3):
            raise ValueError(
                f"{gen.name} made {samples.images.shape[1:]} images; the corpus is "
                f"{config.encoding.size}x{config.encoding.size}"
            )
        for j in range(count):
            i = start + j
            src = samples.sources[j]
            split = split_of[src] if src is not None else unconditional_splits[i]
            item_id = f"{gen.name}-{i:06d}"
            rel, facts = write_item(
                out, f"synthetic/{gen.name}/{split}", item_id, samples.images[j], config
            )
            rows.append(
                synthetic_row(item_id, rel, facts, config, split, gen.name, family(gen.name),
                              gen.config_hash, seed, j, src)
            )  # fmt: skip
        progress(f"generate:{gen.name}", start + count, n, {})
    return rows


def write_clip(
    out: Path, rel_dir: str, item_id: str, samples: Any, config: CorpusConfig
) -> tuple[str, dict[str, Any]]:
    enc = choose_audio_encoding(config.audio, corpus_seed=config.seed, item_id=item_id)
    rate = config.audio.sample_rate
    data = encode_clip(samples, rate, enc)
    rel = f"{rel_dir}/{item_id}{enc.extension}"
    (out / rel).parent.mkdir(parents=True, exist_ok=True)
    (out / rel).write_bytes(data)
    return rel, {
        "format": enc.format,
        "width": 0,
        "height": 0,
        "encoding": enc.to_dict(),
        "bytes": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
        "duration_s": round(len(samples) / rate, 4),
        "sample_rate": rate,
    }


def write_real_audio(
    out: Path,
    config: CorpusConfig,
    source: AudioSource,
    split_of: dict[str, str],
    progress: ProgressFn,
) -> list[ManifestRow]:
    """Each real utterance once (already prepared: trimmed, normalised), encoded like the
    synthetic clips."""
    usable = source.subset(list(split_of))
    n = len(usable) if config.n_real is None else min(config.n_real, len(usable))
    rows = []
    for i, utt in enumerate(usable.pick(n, seed=config.seed)):
        item_id = f"real-{i:06d}"
        split = split_of[utt.id]
        rel, facts = write_clip(out, f"real/{split}", item_id, utt.load(), config)
        rows.append(real_row(item_id, rel, facts, config, split, i, utt.id))
        if i % 16 == 0 or i == n - 1:
            progress("real", i + 1, n, {})
    return rows


def write_synthetic_audio(
    out: Path,
    config: CorpusConfig,
    gen: Generator,
    source: AudioSource,
    split_of: dict[str, str],
    progress: ProgressFn,
) -> list[ManifestRow]:
    """Generator clips through the same preparation as real speech and the same encoding;
    a spliced clip's segment is shifted by whatever the trimming cut."""
    from detector.media.audio import prepare_speech

    n = config.per_generator
    base_seed = int(hashlib.sha256(f"{config.seed}:{gen.name}".encode()).hexdigest()[:8], 16)
    unconditional_splits = draw_splits(n, config.splits, seed=base_seed)
    usable = source.subset(list(split_of))
    rows: list[ManifestRow] = []
    for start in range(0, n, AUDIO_CHUNK):
        count = min(AUDIO_CHUNK, n - start)
        seed = base_seed + start
        samples = gen.generate(count, seed=seed, source=usable if gen.conditional else None)
        if samples.audio is None or samples.sample_rate != config.audio.sample_rate:
            raise ValueError(
                f"{gen.name} made no {config.audio.sample_rate} Hz audio clips "
                f"(sample_rate {samples.sample_rate})"
            )
        for j in range(count):
            i = start + j
            src = samples.sources[j]
            split = split_of[src] if src is not None else unconditional_splits[i]
            # A resynthesis of a (prepared) real clip keeps that clip's length and framing:
            # only its level is normalised. Other clips (text-to-speech) are prepared
            # like real recordings: trimmed, then normalised.
            prepared = prepare_speech(samples.audio[j], samples.sample_rate, trim=src is None)
            clip = prepared.samples
            segment = samples.segments[j] if samples.segments else None
            segments = None
            if segment is not None:
                dur = len(clip) / samples.sample_rate
                a = min(max(0.0, segment[0] - prepared.offset_s), dur)
                b = min(max(0.0, segment[1] - prepared.offset_s), dur)
                segments = [[round(a, 4), round(b, 4)]]
            item_id = f"{gen.name}-{i:06d}"
            rel, facts = write_clip(out, f"synthetic/{gen.name}/{split}", item_id, clip, config)
            rows.append(
                synthetic_row(item_id, rel, facts, config, split, gen.name, family(gen.name),
                              gen.config_hash, seed, j, src, segments=segments)
            )  # fmt: skip
        progress(f"generate:{gen.name}", start + count, n, {})
    return rows


VIDEO_CHUNK = 4  # clips generated, encoded and written per step (each holds its frames)


def write_video(
    out: Path, rel_dir: str, item_id: str, clip: Any, source_item: str, config: CorpusConfig
) -> tuple[str, dict[str, Any]]:
    """Encode a ``VideoClip`` like the real clip ``source_item`` (its encoding, drawn from
    the real clip's id) and write it; the facts of its manifest row."""
    enc = choose_video_encoding(config.video, corpus_seed=config.seed, source_item=source_item)
    data = encode_video_item(clip, enc)
    rel = f"{rel_dir}/{item_id}{enc.extension}"
    (out / rel).parent.mkdir(parents=True, exist_ok=True)
    (out / rel).write_bytes(data)
    w, h = clip.size
    return rel, {
        "format": "mp4",
        "width": w,
        "height": h,
        "encoding": enc.to_dict(),
        "bytes": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
        "duration_s": round(clip.duration_s, 4),
        "sample_rate": clip.sample_rate if clip.audio is not None else None,
        "fps": round(float(clip.fps), 4),
        "frames": len(clip.frames),
        "has_audio": clip.audio is not None,
    }


def write_real_video(
    out: Path,
    config: CorpusConfig,
    source: VideoSource,
    split_of: dict[str, str],
    progress: ProgressFn,
) -> list[ManifestRow]:
    """Each real clip once, downscaled to the corpus's size and re-encoded: the synthetic
    clips made from it get the very same encoding."""
    usable = source.subset(list(split_of))
    n = len(usable) if config.n_real is None else min(config.n_real, len(usable))
    rows = []
    for i, item in enumerate(usable.pick(n, seed=config.seed)):
        item_id = f"real-{i:06d}"
        split = split_of[item.id]
        clip = item.load(max_side=config.video.max_side)
        rel, facts = write_video(out, f"real/{split}", item_id, clip, item.id, config)
        rows.append(real_row(item_id, rel, facts, config, split, i, item.id))
        progress("real", i + 1, n, {})
    return rows


def write_synthetic_video(
    out: Path,
    config: CorpusConfig,
    gen: Generator,
    source: VideoSource,
    split_of: dict[str, str],
    progress: ProgressFn,
) -> list[ManifestRow]:
    """Generator clips, each encoded like the real clip it was made from; the faces the
    generator changed go into the row (``boxes``), frame by frame."""
    n = config.per_generator
    base_seed = int(hashlib.sha256(f"{config.seed}:{gen.name}".encode()).hexdigest()[:8], 16)
    usable = source.subset(list(split_of))
    rows: list[ManifestRow] = []
    for start in range(0, n, VIDEO_CHUNK):
        count = min(VIDEO_CHUNK, n - start)
        seed = base_seed + start
        samples = gen.generate(count, seed=seed, source=usable)
        if samples.videos is None or len(samples.videos) != count:
            raise ValueError(f"{gen.name} made no video clips")
        for j, clip in enumerate(samples.videos):
            i = start + j
            src = samples.sources[j]
            if src is None or src not in split_of:
                raise ValueError(f"{gen.name} made a clip from no known real clip ({src!r})")
            split = split_of[src]
            item_id = f"{gen.name}-{i:06d}"
            rel, facts = write_video(
                out, f"synthetic/{gen.name}/{split}", item_id, clip, src, config
            )
            facts["boxes"] = clip.boxes or [[] for _ in range(len(clip.frames))]
            rows.append(
                synthetic_row(item_id, rel, facts, config, split, gen.name, family(gen.name),
                              gen.config_hash, seed, j, src)
            )  # fmt: skip
        progress(f"generate:{gen.name}", start + count, n, {})
    return rows
