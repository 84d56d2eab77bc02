"""The retraining job: a new generator appears, the detector learns it without forgetting.

``retrain(settings, modality=..., add_generators=[...])``

1. finds the model now active for the modality and the corpora on its card (those that
   still exist; ``corpus`` names the one to extend explicitly);
2. extends that corpus with the new generators (``generators.corpus.build_corpus``, with
   the settings recorded in its ``corpus.json``: real source, splits, encoding, seed),
   as many items per generator as its existing generators have;
3. fine-tunes the active model on every corpus, old items and new (replay, see
   ``detector.train.retrain``), or trains from scratch (``scratch=True``);
4. evaluates the candidate (``<run>/report``), adds it to the store, runs the evaluation
   gate against the active model on the corpora's test splits (the added generators are
   the new ones) and records it;
5. promotes it when asked (``promote=True``) and the gate passed; otherwise the result
   says whether promotion is proposed.

The run folder holds ``run.json`` (inputs, seconds per stage, the candidate, the gate),
``model/`` and ``report/``; an interrupted run given the same folder resumes training
from its last epoch.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from detector.config import check_choice, check_preset, to_dict
from detector.eval.gate import DEFAULT_MARGIN
from worker.settings import Settings

if TYPE_CHECKING:
    from detector.train.retrain import RetrainConfig
    from generators.corpus.fakes import FakesSpec

# on_progress(stage, done, total, metrics), like the builder's and the trainer's.
ProgressFn = Callable[[str, int, int, dict[str, float]], None]
RUN_JSON = "run.json"


@dataclass
class RetrainResult:
    run_dir: Path
    modality: str
    mode: str  # "fine-tune" or "scratch"
    active: dict[str, str]  # name, version, path of the model it was compared with
    corpus: Path  # the corpus extended
    corpora: list[Path]  # everything trained and gated on
    added: dict[str, int]  # items this run wrote, per generator
    new_generators: list[str]
    candidate_version: str  # "v3": a version of the store
    candidate_path: Path
    gate: dict[str, Any]
    proposed: bool  # the gate passed: promotion is proposed
    promoted: bool
    seconds: dict[str, float] = field(default_factory=dict)


def retrain(
    settings: Settings,
    *,
    modality: str = "image",
    add_generators: Sequence[str] = (),
    fakes: Sequence[FakesSpec] = (),
    real: str | None = None,
    corpus: str | Path | None = None,
    scratch: bool = False,
    preset: str = "default",
    config: RetrainConfig | None = None,
    train_overrides: dict[str, Any] | None = None,
    margin: float = DEFAULT_MARGIN,
    out_dir: str | Path | None = None,
    promote: bool = False,
    on_progress: ProgressFn | None = None,
    source: Any | None = None,
) -> RetrainResult:
    """Extend, train, evaluate, store, gate (and optionally promote); see the module doc.

    ``add_generators`` are registered generator names (built-in or plugin); ``fakes`` are
    ``generators.corpus.FakesSpec`` folders of media another tool made. ``preset`` picks
    the new generators' preset and the training recipe (``RetrainConfig.preset`` unless
    ``config`` is given); ``train_overrides`` win over the recipe. ``source`` is the real
    source already opened (else the corpus's recorded one is opened).
    """
    from detector.train.retrain import RetrainConfig, finetune_overrides
    from detector.train.trainer import train_detector
    from worker import model_store
    from worker.runtime import active_models

    check_choice("modality", modality, ("image", "audio", "video"))
    check_preset(preset)
    progress = on_progress or (lambda *_a: None)
    rc = config if config is not None else RetrainConfig.preset(preset)
    new_names = check_generators(modality, list(add_generators), list(fakes))
    real_spec = _real_spec(real)

    active = active_models(settings).get(modality)
    if active is None:
        raise ValueError(
            f"no {modality} model is active, configured or shipped: train one "
            "(`synthguard train`), add it to the store and promote it first"
        )
    target, corpora = _corpora(active.card, corpus, modality)
    meta = _corpus_meta(target, modality)
    recorded_real = meta["config"].get("real")
    if real_spec is not None and real_spec != recorded_real:
        raise ValueError(
            f"{target} was built from the real source {recorded_real!r}; --real "
            f"{real_spec!r} differs (a corpus keeps one real source: leave --real out, "
            "or build a new corpus for another source)"
        )
    present = _present_generators(corpora)
    seen = set(active.card.get("generators", []))
    for name in new_names:
        if name in seen:
            raise ValueError(
                f"the active {modality} model ({active.name} {active.version}) was already "
                f"trained with generator {name!r}: nothing to add"
            )
    to_build = [g for g in add_generators if g not in present]
    fakes_to_add = [f for f in fakes if f.name not in present]

    run = Path(out_dir) if out_dir is not None else _default_run_dir(settings, modality)
    run.mkdir(parents=True, exist_ok=True)
    mode = "scratch" if scratch else "fine-tune"
    if scratch:
        overrides = dict(train_overrides or {})
    else:  # a video model's face model trains as an image model
        trained_as = "image" if modality == "video" else modality
        overrides = finetune_overrides(trained_as, preset, rc, train_overrides)
    record: dict[str, Any] = {
        "status": "running",
        "started": _now(),
        "inputs": {
            "modality": modality,
            "add_generators": list(add_generators),
            "fakes": [to_dict(f) for f in fakes],
            "real": real_spec,
            "corpus": str(corpus) if corpus is not None else None,
            "scratch": scratch,
            "preset": preset,
            "retrain_config": to_dict(rc),
            "train_overrides": overrides,
            "margin": margin,
            "promote": promote,
        },
        "mode": mode,
        "active": {"name": active.name, "version": active.version, "path": str(active.folder)},
        "corpus": str(target),
        "corpora": [str(c) for c in corpora],
        "new_generators": new_names,
        "seconds": {},
    }
    seconds: dict[str, float] = record["seconds"]
    _write_run(run, record)
    try:
        # 1. the corpus
        t0 = time.perf_counter()
        added: dict[str, int] = {}
        if to_build or fakes_to_add:
            added = _extend(
                target, meta, to_build, fakes_to_add, rc, preset, source, modality, progress
            )
        seconds["extend"] = round(time.perf_counter() - t0, 2)
        record["added"] = added
        _write_run(run, record)

        # 2. training: every corpus, every earlier item (replay)
        t0 = time.perf_counter()
        if modality == "video":
            from detector.train.video import train_video_detector

            voice = active.folder / "voice"
            result = train_video_detector(
                corpora,
                run / "model",
                preset=preset,
                train_overrides=overrides,
                voice_model=voice if (voice / "card.json").is_file() else "none",
                init_from=None if scratch else active.folder,
                on_progress=progress,
            )
        elif not scratch and active.card.get("architecture") == "ensemble":
            from detector.train.ensemble import finetune_ensemble

            # Each member fine-tuned from its weights, then combined again as it was.
            result = finetune_ensemble(
                active.folder,
                corpora,
                run / "model",
                work_dir=run / "members",
                preset=preset,
                train_overrides=overrides,
                on_progress=progress,
            )
        else:
            result = train_detector(
                corpora,
                run / "model",
                modality=modality,
                preset=preset,
                train_overrides=overrides,
                init_from=None if scratch else active.folder,
                on_progress=progress,
            )
        seconds["train"] = round(time.perf_counter() - t0, 2)
        record["training"] = {
            "epochs": len(result.history),
            "test": result.card["metrics"]["test"].get("overall", {}),
        }
        _write_run(run, record)

        # 3. evaluation
        t0 = time.perf_counter()
        from detector.eval.evaluate import evaluate

        evaluate(run / "model", corpora, run / "report", on_progress=progress)
        seconds["evaluate"] = round(time.perf_counter() - t0, 2)

        # 4. the store and the gate
        t0 = time.perf_counter()
        row = model_store.add_model(
            settings,
            run / "model",
            report_dir=run / "report",
            extra={"retrain": {"run": str(run.resolve()), "mode": mode, "added": new_names}},
        )
        version = f"v{row.version}"
        record["candidate"] = {"version": version, "path": row.path}
        seconds["store"] = round(time.perf_counter() - t0, 2)
        _write_run(run, record)

        t0 = time.perf_counter()
        progress("gate", 0, 1, {})
        from detector.eval.gate import evaluation_gate

        gate = evaluation_gate(
            row.path, active.folder, corpora, margin=margin, new_generators=new_names
        )
        model_store.set_gate(settings, modality, version, gate)
        progress("gate", 1, 1, {})
        seconds["gate"] = round(time.perf_counter() - t0, 2)
        record["gate"] = {k: gate[k] for k in ("passed", "summary", "overall", "table")}

        promoted = False
        if promote and gate["passed"]:
            t0 = time.perf_counter()
            model_store.promote(settings, modality, version)
            promoted = True
            seconds["promote"] = round(time.perf_counter() - t0, 2)
        record |= {"status": "done", "finished": _now(), "proposed": gate["passed"]}
        record["promoted"] = promoted
        _write_run(run, record)
    except BaseException as exc:
        record |= {"status": "failed", "finished": _now(), "error": f"{type(exc).__name__}: {exc}"}
        _write_run(run, record)
        raise
    return RetrainResult(
        run_dir=run,
        modality=modality,
        mode=mode,
        active=record["active"],
        corpus=target,
        corpora=corpora,
        added=added,
        new_generators=new_names,
        candidate_version=version,
        candidate_path=Path(row.path),
        gate=gate,
        proposed=bool(gate["passed"]),
        promoted=promoted,
        seconds=seconds,
    )


def check_generators(modality: str, names_: list[str], fakes: list[FakesSpec]) -> list[str]:
    """Every name registered and of the modality, none twice; returns all the new names."""
    from generators.corpus.fakes import FakesSpec
    from generators.registry import create, names

    if not names_ and not fakes:
        raise ValueError("name at least one generator to add (--add-generator NAME)")
    valid = names()
    for name in names_:
        check_choice("generator", name, valid)
        made_for = create(name, preset="tiny").modality
        if made_for != modality:
            raise ValueError(f"generator {name!r} makes {made_for}; the model judges {modality}")
    for spec in fakes:
        if not isinstance(spec, FakesSpec):
            raise TypeError(f"fakes must be FakesSpec folders, got {spec!r}")
        if spec.name in valid:
            raise ValueError(
                f"fakes name {spec.name!r} is already a registered generator; "
                "give the folder another name"
            )
    all_names = list(names_) + [f.name for f in fakes]
    twice = sorted(n for n, c in Counter(all_names).items() if c > 1)
    if twice:
        raise ValueError(f"generator named twice: {twice}")
    return all_names


def _real_spec(real: str | None) -> str | None:
    if real is None or real == "starter":
        return real
    return str(Path(real).expanduser().resolve())


def _corpora(
    card: dict[str, Any], corpus: str | Path | None, modality: str
) -> tuple[Path, list[Path]]:
    """The corpus to extend and every corpus to train on (the card's that still exist)."""
    listed = [Path(c) for c in card.get("corpora", [])]
    existing = [c for c in listed if (c / "manifest.jsonl").is_file()]
    if corpus is not None:
        target = Path(corpus).expanduser().resolve()
        if not target.is_dir():
            raise ValueError(f"--corpus {corpus}: no such folder")
        return target, list(dict.fromkeys([target, *existing]))
    if not existing:
        gone = ", ".join(str(c) for c in listed) or "none recorded"
        raise ValueError(
            f"the active {modality} model's corpora are gone ({gone}): give --corpus DIR, "
            "the corpus to extend"
        )
    return existing[0], existing


def _corpus_meta(target: Path, modality: str) -> dict[str, Any]:
    from generators.corpus.builder import CORPUS_JSON

    path = target / CORPUS_JSON
    meta: dict[str, Any] = json.loads(path.read_text()) if path.is_file() else {}
    if not isinstance(meta.get("config"), dict) or "photo_splits" not in meta:
        raise ValueError(
            f"{target} was not built by `synthguard corpus build` (its {CORPUS_JSON} holds "
            "no settings): it cannot be extended; give --corpus a corpus that was"
        )
    if meta["config"].get("modality") != modality:
        raise ValueError(f"{target} is a {meta['config'].get('modality')} corpus, not {modality}")
    return meta


def _present_generators(corpora: Sequence[Path]) -> set[str]:
    from generators.corpus.manifest import read_manifest

    return {
        r.generator_name
        for c in corpora
        for r in read_manifest(c)
        if r.label == "synthetic" and r.generator_name
    }


def _extend(
    target: Path,
    meta: dict[str, Any],
    generators: list[str],
    fakes: list[FakesSpec],
    rc: RetrainConfig,
    preset: str,
    source: Any,
    modality: str,
    progress: ProgressFn,
) -> dict[str, int]:
    """Add the generators to ``target`` with the settings it was built with."""
    from generators.corpus.builder import build_corpus, load_corpus_config
    from generators.corpus.manifest import read_manifest

    per_generator = rc.per_generator
    if per_generator is None:
        counts = Counter(r.generator_name for r in read_manifest(target) if r.label == "synthetic")
        if not counts:
            raise ValueError(f"{target} holds no synthetic items to size the new ones by")
        per_generator = Counter(counts.values()).most_common(1)[0][0]
    fixed = dict(meta["config"])
    config = load_corpus_config(
        fixed
        | {
            "generators": generators,
            "fakes": fakes,
            "per_generator": per_generator,
            "preset": fixed.get("preset", preset),
        }
    )
    if source is None:
        from generators.sources import open_source

        options: dict[str, Any] = {}
        if modality == "video":  # the clips cut as when the corpus was built
            video = config.video
            options = {"clip_seconds": video.clip_seconds, "max_clips": video.max_clips}
        source = open_source(config.real, modality=modality, **options)
    report = build_corpus(config, target, on_progress=progress, source=source)
    return dict(report.added)


def _default_run_dir(settings: Settings, modality: str) -> Path:
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    return Path(settings.data_dir) / "runs" / f"retrain-{modality}-{stamp}"


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _write_run(run: Path, record: dict[str, Any]) -> None:
    tmp = run / (RUN_JSON + ".tmp")
    tmp.write_text(json.dumps(record, indent=2, sort_keys=True, default=str) + "\n")
    tmp.replace(run / RUN_JSON)
