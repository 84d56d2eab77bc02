"""Build (or extend) a labeled corpus: real crops plus generator output, one encoding for all."""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from detector.config import check_choice, check_preset, from_dict, to_dict
from generators.base import Generator
from generators.checkpoint import load_generator, read_checkpoint_meta, save_generator
from generators.corpus.audit import encoding_audit
from generators.corpus.encoding import (
    AudioEncodingConfig,
    EncodingConfig,
    VideoEncodingConfig,
)
from generators.corpus.fakes import (
    FAKES_KEY,
    FakesFolder,
    FakesSpec,
    folder_hash,
    open_fakes,
    write_fakes,
)
from generators.corpus.items import (
    write_real,
    write_real_audio,
    write_real_video,
    write_synthetic,
    write_synthetic_audio,
    write_synthetic_video,
)
from generators.corpus.manifest import read_manifest, write_manifest
from generators.corpus.splits import check_fractions, split_items
from generators.registry import create, names, origin
from generators.sources import DEFAULT_SCALES, RealSource, open_source

CORPUS_JSON = "corpus.json"
MODALITIES = ("image", "audio", "video")

# on_progress(stage, done, total, metrics): stages are "real", "fit:<name>", "generate:<name>".
ProgressFn = Callable[[str, int, int, dict[str, float]], None]


@dataclass(frozen=True)
class CorpusConfig:
    modality: str = "image"
    real: str = "starter"  # "starter" or a folder of real images (or speech, or videos)
    generators: tuple[str, ...] = ("gan_tconv", "ae_bilinear", "ddpm")
    per_generator: int = 700
    # Images: real crops, default as many as synthetic items. Audio and video: real
    # utterances (clips), each used once (default all of them; a number picks that many).
    n_real: int | None = None
    preset: str = "default"
    scales: tuple[float, ...] = DEFAULT_SCALES
    splits: tuple[float, float, float] = (0.7, 0.15, 0.15)
    encoding: EncodingConfig = field(default_factory=EncodingConfig)
    audio: AudioEncodingConfig = field(default_factory=AudioEncodingConfig)
    video: VideoEncodingConfig = field(default_factory=VideoEncodingConfig)
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
        keys += {"audio": ["audio"], "video": ["video"]}.get(self.modality, ["scales", "encoding"])
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
    source = source or _open(config)
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
        write_reals = {"audio": write_real_audio, "video": write_real_video}.get(
            config.modality, write_real
        )
        new = write_reals(out, config, source, split_of, progress)
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
        write = {"audio": write_synthetic_audio, "video": write_synthetic_video}.get(
            config.modality, write_synthetic
        )
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
    elif config.modality == "audio":
        meta["sample_rate"] = config.audio.sample_rate
    else:
        meta["max_side"] = config.video.max_side
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
        folders.append(
            open_fakes(
                spec,
                modality=config.modality,
                clip_seconds=config.video.clip_seconds,
                max_clips=config.video.max_clips,
            )
        )
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
    """Splits are fixed when the corpus is first built; later photos are not used.

    Video clips are split by the video they were cut from: no video (no person, no
    scene) has clips in two splits.
    """
    if meta.get("photo_splits") is None:
        if not len(source):
            raise ValueError(f"real source {config.real!r} has no usable {config.modality}")
        if config.modality == "video":
            by_parent = split_items(
                sorted({it.parent for it in source.items}), config.splits, seed=config.seed
            )
            meta["photo_splits"] = {it.id: by_parent[it.parent] for it in source.items}
        else:
            meta["photo_splits"] = split_items(
                [it.id for it in source.items], config.splits, seed=config.seed
            )
    stored: dict[str, str] = meta["photo_splits"]
    return {it.id: stored[it.id] for it in source.items if it.id in stored}


def _open(config: CorpusConfig) -> Any:
    if config.modality == "video":
        v = config.video
        return open_source(
            config.real, modality="video", clip_seconds=v.clip_seconds, max_clips=v.max_clips
        )
    return open_source(config.real, modality=config.modality)


def _fitted_generator(
    out: Path, name: str, config: CorpusConfig, train_source: RealSource, progress: ProgressFn
) -> tuple[Generator, float]:
    """Reuse the corpus's checkpoint for ``name`` when its config matches; otherwise train."""
    if config.modality == "image":
        gen = create(name, preset=config.preset, image_size=config.encoding.size)
    elif config.modality == "video":  # generated clips keep the real clips' frame size
        gen = create(name, preset=config.preset, max_side=config.video.max_side)
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
