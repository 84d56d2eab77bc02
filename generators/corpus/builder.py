"""Build (or extend) a labeled corpus: real crops plus generator output, one encoding for all."""

from __future__ import annotations

import hashlib
import json
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from detector.config import check_choice, check_preset, from_dict, to_dict
from generators.base import Generator, Samples
from generators.checkpoint import load_generator, read_checkpoint_meta, save_generator
from generators.corpus.audit import encoding_audit
from generators.corpus.encoding import (
    AudioEncodingConfig,
    EncodingConfig,
    choose_audio_encoding,
    choose_encoding,
    encode_clip,
    encode_image,
)
from generators.corpus.fakes import (
    FAKES_KEY,
    FakesFolder,
    FakesSpec,
    folder_hash,
    open_fakes,
    write_fakes,
)
from generators.corpus.manifest import ManifestRow, read_manifest, write_manifest
from generators.corpus.splits import check_fractions, draw_splits, split_items
from generators.registry import create, family, names, origin
from generators.sources import DEFAULT_SCALES, AudioSource, RealSource, open_source

CORPUS_JSON = "corpus.json"
MODALITIES = ("image", "audio")
CHUNK = 256  # items generated, encoded and written per step

# on_progress(stage, done, total, metrics): stages are "real", "fit:<name>", "generate:<name>".
ProgressFn = Callable[[str, int, int, dict[str, float]], None]


@dataclass(frozen=True)
class CorpusConfig:
    modality: str = "image"
    real: str = "starter"  # "starter" or a folder of real images (or speech)
    generators: tuple[str, ...] = ("gan_tconv", "ae_bilinear", "ddpm")
    per_generator: int = 700
    # Images: real crops, default as many as synthetic items. Audio: real utterances, each
    # used once (default all of them; a number picks that many).
    n_real: int | None = None
    preset: str = "default"
    scales: tuple[float, ...] = DEFAULT_SCALES
    splits: tuple[float, float, float] = (0.7, 0.15, 0.15)
    encoding: EncodingConfig = field(default_factory=EncodingConfig)
    audio: AudioEncodingConfig = field(default_factory=AudioEncodingConfig)
    seed: int = 0
    # Folders of already-generated media, each a generator of its own (``--fakes``).
    fakes: tuple[FakesSpec, ...] = ()

    def __post_init__(self) -> None:
        check_choice("modality", self.modality, MODALITIES)
        check_preset(self.preset)
        check_fractions(self.splits)
        if not self.generators and not self.fakes:
            raise ValueError("a corpus needs at least one generator (or a --fakes folder)")
        valid = names()
        for name in self.generators:
            check_choice("generator", name, valid)
            made_for = create(name, preset="tiny").modality
            if made_for != self.modality:
                raise ValueError(
                    f"generator {name!r} makes {made_for}; this corpus is {self.modality}"
                )
        if len(set(self.generators)) != len(self.generators):
            raise ValueError(f"generator listed twice: {list(self.generators)}")
        if self.per_generator < 1:
            raise ValueError(f"per_generator must be at least 1, got {self.per_generator}")
        _check_fakes_names(self.fakes, self.generators, valid)

    @property
    def real_count(self) -> int:
        n_gens = len(self.generators) + len(self.fakes)
        return self.n_real if self.n_real is not None else self.per_generator * n_gens

    # These must match for a new build to extend an existing corpus.
    def fixed(self) -> dict[str, Any]:
        d = to_dict(self)
        keys = ["modality", "real", "splits", "seed"]
        keys += ["audio"] if self.modality == "audio" else ["scales", "encoding"]
        return {k: d[k] for k in keys}


@dataclass
class BuildReport:
    out_dir: Path
    added: dict[str, int]  # items written by this run, per generator ("real" for real)
    skipped: list[str]  # generators already in the corpus
    fit_seconds: dict[str, float]
    generate_seconds: dict[str, float]
    counts: dict[str, dict[str, int]]  # label -> split -> items, whole corpus
    audit: dict[str, Any]
    real_skipped: dict[str, int]  # real-source files skipped, by reason
    # --fakes folders: name -> the corpus.json record, plus "skipped_files" [(path, code,
    # message)] for a folder added by this run, or "changed" (bool) for one already there.
    fakes: dict[str, dict[str, Any]] = field(default_factory=dict)


def build_corpus(
    config: CorpusConfig,
    out_dir: str | Path,
    *,
    on_progress: ProgressFn | None = None,
    source: RealSource | None = None,
) -> BuildReport:
    """Write real and synthetic items plus ``manifest.jsonl`` and ``corpus.json`` to ``out_dir``.

    Re-running on an existing corpus adds only the generators it lacks (and resumes
    an interrupted build): generators already in the manifest are kept as they are.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    progress = on_progress or (lambda *_a: None)
    meta = _load_or_init_meta(out, config)
    source = source or open_source(config.real, modality=config.modality)
    split_of = _photo_splits(meta, source, config)
    _write_json(out / CORPUS_JSON, meta)  # the splits are fixed from the first run on
    rows = read_manifest(out)
    present = {r.generator_name for r in rows if r.label == "synthetic"}
    report = BuildReport(
        out_dir=out,
        added={},
        skipped=sorted(present & set(config.generators)),
        fit_seconds={},
        generate_seconds={},
        counts={},
        audit={},
        real_skipped=source.skipped_summary(),
    )
    size = config.encoding.size
    fakes = _open_fakes(config, present, meta, report)  # before any work: a bad folder fails fast

    if not any(r.label == "real" for r in rows):
        write_real = _write_real_audio if config.modality == "audio" else _write_real
        new = write_real(out, config, source, split_of, progress)
        rows += new
        report.added["real"] = len(new)
        write_manifest(out, rows)

    train_source = source.subset([pid for pid, s in split_of.items() if s == "train"])
    for name in config.generators:
        if name in present:
            continue
        gen, fit_s = _fitted_generator(out, name, config, train_source, progress)
        report.fit_seconds[name] = fit_s
        t0 = time.perf_counter()
        write = _write_synthetic_audio if config.modality == "audio" else _write_synthetic
        new = write(out, config, gen, source, split_of, progress)
        report.generate_seconds[name] = round(time.perf_counter() - t0, 2)
        rows += new
        report.added[name] = len(new)
        write_manifest(out, rows)  # one generator at a time: a crash loses at most this one

    for folder in fakes:  # --fakes: generators/corpus/fakes.py
        name = folder.spec.name
        t0 = time.perf_counter()
        new = write_fakes(out, config, folder, progress)
        report.generate_seconds[name] = round(time.perf_counter() - t0, 2)
        rows += new
        report.added[name] = len(new)
        meta.setdefault(FAKES_KEY, {})[name] = folder.record(len(new))
        skipped_files = [[s.path, s.code, s.message] for s in folder.skipped]
        report.fakes[name] = {**meta[FAKES_KEY][name], "skipped_files": skipped_files}
        write_manifest(out, rows)
        _write_json(out / CORPUS_JSON, meta)

    for r in rows:
        report.counts.setdefault(r.label, Counter())[r.split] += 1  # type: ignore[index]
    report.counts = {k: dict(v) for k, v in report.counts.items()}
    report.audit = encoding_audit(rows)
    meta["generators"] = sorted({r.generator_name for r in rows if r.generator_name})
    meta["counts"] = report.counts
    meta["audit"] = report.audit
    if config.modality == "image":
        meta["size"] = size
    else:
        meta["sample_rate"] = config.audio.sample_rate
    _write_json(out / CORPUS_JSON, meta)
    return report


def _check_fakes_names(
    fakes: Sequence[FakesSpec], generators: Sequence[str], registered: Sequence[str]
) -> None:
    seen: set[str] = set()
    for spec in fakes:
        if spec.name in registered:
            raise ValueError(
                f"fakes name {spec.name!r} is already a registered generator "
                f"({origin(spec.name)}); give the folder another name"
            )
        if spec.name in seen or spec.name in generators:
            raise ValueError(f"generator listed twice: {spec.name!r}")
        seen.add(spec.name)


def _open_fakes(
    config: CorpusConfig, present: set[str], meta: dict[str, Any], report: BuildReport
) -> list[FakesFolder]:
    """Scan the --fakes folders the corpus lacks; those it has are skipped, like a
    generator already in it (``changed``: the folder no longer matches its record)."""
    folders = []
    for spec in config.fakes:
        if spec.name in present:
            record = meta.get(FAKES_KEY, {}).get(spec.name, {})
            changed = record.get("config_hash") != folder_hash(spec.path)
            report.fakes[spec.name] = {**record, "changed": changed}
            report.skipped.append(spec.name)
            continue
        folders.append(open_fakes(spec, modality=config.modality))
    return folders


def _load_or_init_meta(out: Path, config: CorpusConfig) -> dict[str, Any]:
    path = out / CORPUS_JSON
    if not path.exists():
        if (out / "manifest.jsonl").exists():
            raise ValueError(f"{out} has a manifest but no {CORPUS_JSON}: not a synthguard corpus")
        return {"format": 1, "config": config.fixed(), "photo_splits": None}
    meta: dict[str, Any] = json.loads(path.read_text())
    old, new = meta["config"], config.fixed()
    diff = sorted(k for k in new if old.get(k) != new[k])
    if diff:
        detail = "; ".join(f"{k}: corpus has {old.get(k)!r}, asked {new[k]!r}" for k in diff)
        raise ValueError(f"cannot extend {out}: settings differ ({detail})")
    return meta


def _photo_splits(meta: dict[str, Any], source: RealSource, config: CorpusConfig) -> dict[str, str]:
    """Splits are fixed when the corpus is first built; later photos are not used."""
    if meta.get("photo_splits") is None:
        if not len(source):
            raise ValueError(f"real source {config.real!r} has no usable {config.modality}")
        meta["photo_splits"] = split_items(
            [it.id for it in source.items], config.splits, seed=config.seed
        )
    stored: dict[str, str] = meta["photo_splits"]
    return {it.id: stored[it.id] for it in source.items if it.id in stored}


def _write_item(
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


def _write_real(
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
        rel, facts = _write_item(out, f"real/{split}", item_id, crop.image, config)
        rows.append(_real_row(item_id, rel, facts, config, split, i, crop.parent))
        if i % 64 == 0 or i == n - 1:
            progress("real", i + 1, n, {})
    return rows


def _real_row(
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


def _fitted_generator(
    out: Path, name: str, config: CorpusConfig, train_source: RealSource, progress: ProgressFn
) -> tuple[Generator, float]:
    """Reuse the corpus's checkpoint for ``name`` when its config matches; otherwise train."""
    if config.modality == "image":
        gen = create(name, preset=config.preset, image_size=config.encoding.size)
    else:
        gen = create(name, preset=config.preset)
    ckpt = out / "generators" / name
    if (ckpt / "model.safetensors").exists():
        meta = read_checkpoint_meta(ckpt)
        if meta.get("config_hash") == gen.config_hash:
            loaded = load_generator(ckpt)
            fit = loaded.fit_report
            return loaded, fit.seconds if fit else 0.0
    if not len(train_source):
        raise ValueError("the training split has no real media to fit generators on")
    report = gen.fit(train_source, on_step=lambda s, t, m: progress(f"fit:{name}", s, t, m))
    save_generator(gen, ckpt, real_source=config.real, trained_on_split="train")
    return gen, report.seconds


def _write_synthetic(
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
            rel, facts = _write_item(
                out, f"synthetic/{gen.name}/{split}", item_id, samples.images[j], config
            )
            rows.append(
                ManifestRow(
                    id=item_id,
                    path=rel,
                    label="synthetic",
                    modality=config.modality,
                    split=split,
                    generator_family=family(gen.name),
                    generator_name=gen.name,
                    config_hash=gen.config_hash,
                    seed=seed,
                    index=j,
                    source_item=src,
                    **facts,
                )
            )
        progress(f"generate:{gen.name}", start + count, n, {})
    return rows


def _write_clip(
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


def _write_real_audio(
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
        rel, facts = _write_clip(out, f"real/{split}", item_id, utt.load(), config)
        rows.append(_real_row(item_id, rel, facts, config, split, i, utt.id))
        if i % 16 == 0 or i == n - 1:
            progress("real", i + 1, n, {})
    return rows


AUDIO_CHUNK = 16  # clips generated, prepared, encoded and written per step


def _write_synthetic_audio(
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
            rel, facts = _write_clip(out, f"synthetic/{gen.name}/{split}", item_id, clip, config)
            rows.append(
                ManifestRow(
                    id=item_id,
                    path=rel,
                    label="synthetic",
                    modality="audio",
                    split=split,
                    generator_family=family(gen.name),
                    generator_name=gen.name,
                    config_hash=gen.config_hash,
                    seed=seed,
                    index=j,
                    source_item=src,
                    segments=segments,
                    **facts,
                )
            )
        progress(f"generate:{gen.name}", start + count, n, {})
    return rows


def _write_json(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    tmp.replace(path)


def load_corpus_config(data: dict[str, Any]) -> CorpusConfig:
    """A ``CorpusConfig`` from JSON-like data (unknown keys are errors)."""
    return from_dict(CorpusConfig, data)


def corpus_info(corpus_dir: str | Path) -> dict[str, Any]:
    """Counts per label, split and generator, and the encoding audit, read from disk."""
    rows = read_manifest(corpus_dir)
    if not rows:
        raise ValueError(f"{corpus_dir} has no manifest.jsonl: not a corpus (or an empty one)")
    per_gen: Counter[str] = Counter(r.generator_name or "real" for r in rows)
    per_split: dict[str, Counter[str]] = {}
    for r in rows:
        per_split.setdefault(r.label, Counter())[r.split] += 1
    return {
        "items": len(rows),
        "per_generator": dict(sorted(per_gen.items())),
        "per_split": {k: dict(v) for k, v in per_split.items()},
        "audit": encoding_audit(rows),
    }


__all__: Sequence[str] = [
    "BuildReport",
    "CorpusConfig",
    "build_corpus",
    "corpus_info",
    "load_corpus_config",
]
