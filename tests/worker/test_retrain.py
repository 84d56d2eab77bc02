"""The retraining loop (issue 7): a detector trained without generator X scores X poorly;
``retrain --add-generator X`` extends its corpus, fine-tunes it with replay, and gives a
candidate that catches X, passes the gate, is promoted, and a running service scores with
it; a candidate that forgot an earlier generator is refused by the gate."""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from api.cli import app
from detector.config import from_dict
from detector.eval.gate import evaluation_gate
from detector.train.trainer import train_detector
from generators.base import FitReport, Generator, Samples
from generators.corpus import CorpusConfig, EncodingConfig, build_corpus, read_manifest
from generators.registry import GENERATORS, names, register
from generators.sources import DEFAULT_SCALES
from tests.api._util import png, running_app
from worker import model_store
from worker.model_store import GateRefused
from worker.retrain import retrain
from worker.settings import Settings

SIZE = 32
PER_GENERATOR = 200
TAG = "t0"  # fixed: the generators' crops (seeded by name) are then the same every run
EARLIER = f"rt_checker_{TAG}"  # the generator the first model knows
NEW = f"rt_tinted_{TAG}"  # the generator that appears later
FIRST_TRAIN = {"epochs": 10, "patience": 10}  # tiny network, a few seconds
# The image next to its residual: a colour cast is a trace of the colours, which the
# residual alone (the shipped design) barely keeps.
DESIGN = {"keep_rgb": True}
WIDE = {"COLUMNS": "200"}


def checker(img: np.ndarray) -> np.ndarray:
    """A faint period-2 checkerboard, the trace transposed convolutions leave. Unlike a
    blocky down-up resampling it shows on flat content too (some starter photos are flat
    or already blocky), so a detector reaches AUC ~1 on it and the gate's 0.01 rule for
    earlier generators measures forgetting rather than noise."""
    h, w = img.shape[:2]
    sign = np.where((np.arange(h)[:, None] + np.arange(w)[None, :]) % 2 == 0, 10.0, -10.0)
    return np.clip(img.astype(np.float32) + sign[..., None], 0, 255).astype(np.uint8)


def tinted(img: np.ndarray) -> np.ndarray:
    """A strong colour cast: a trace a checkerboard detector does not look for."""
    out = img.astype(np.float32) * np.array([1.0, 0.55, 0.55]) + np.array([40, 0, 0])
    return np.clip(out, 0, 255).astype(np.uint8)


@dataclass(frozen=True)
class CropTraceConfig:
    image_size: int = 64
    scales: tuple[float, ...] = DEFAULT_SCALES


class CropTrace(Generator):
    """A conditional generator with nothing to learn: real crops through a fixed function."""

    family = "test"
    conditional = True

    def __init__(self, name: str, config: CropTraceConfig, fn: Any) -> None:
        super().__init__(name, config)
        self.fn = fn

    def fit(self, source: Any, *, on_step: Any = None) -> FitReport:
        self.fit_report = FitReport(steps=0, seconds=0.0, n_train=len(source), final={})
        return self.fit_report

    def generate(self, n: int, *, seed: int, source: Any | None = None) -> Samples:
        assert source is not None, "a conditional generator needs the real source"
        cfg = self.config
        crops = list(source.crops(n, size=cfg.image_size, seed=seed, scales=cfg.scales))
        images = np.stack([self.fn(c.image) for c in crops])
        return Samples(images=images, sources=[c.parent for c in crops], seeds=[seed] * n)


@pytest.fixture(scope="module", autouse=True)
def _one_thread() -> Iterator[None]:
    """The tests share the machine's cores with whatever else runs: one torch thread."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def test_generators() -> Iterator[tuple[str, str]]:
    """Two registered generators (as a plugin would add them), removed afterwards."""
    names()  # built-ins and installed plugins first
    saved = (dict(GENERATORS._builders), dict(GENERATORS._meta))
    for name, fn in ((EARLIER, checker), (NEW, tinted)):

        def build(*, preset: str = "default", _n=name, _f=fn, **overrides: Any) -> CropTrace:
            return CropTrace(_n, from_dict(CropTraceConfig, overrides), _f)

        register(name, family=name)(build)
    try:
        yield EARLIER, NEW
    finally:
        GENERATORS._builders, GENERATORS._meta = saved


@pytest.fixture(scope="module")
def base(tmp_path_factory, starter, test_generators) -> dict[str, Path]:
    """A corpus with the earlier generator only, and a model trained on it."""
    root = tmp_path_factory.mktemp("retrain")
    corpus = root / "corpus"
    config = CorpusConfig(
        modality="image",
        real="starter",
        generators=(EARLIER,),
        per_generator=PER_GENERATOR,
        n_real=2 * PER_GENERATOR,
        preset="tiny",
        splits=(0.6, 0.2, 0.2),
        encoding=EncodingConfig(size=SIZE, jpeg_fraction=0.5, jpeg_quality=(80, 100)),
    )
    build_corpus(config, corpus, source=starter)
    model = root / "first-model"
    train_detector(
        [corpus], model, preset="tiny", model_overrides=DESIGN, train_overrides=FIRST_TRAIN
    )
    return {"root": root, "corpus": corpus, "model": model}


def _report_auc(run: Path, generator: str) -> float:
    metrics = json.loads((run / "report" / "metrics.json").read_text())
    return float(metrics["per_generator"][generator]["auc"])


def test_retrain_learns_the_new_generator_and_the_gate_refuses_forgetting(
    tmp_path, monkeypatch, base
) -> None:
    monkeypatch.setenv("SYNTHGUARD_DATA_DIR", str(tmp_path))
    settings = Settings(data_dir=tmp_path)
    first = model_store.add_model(settings, base["model"])
    model_store.promote(settings, "image", first.version, force=True, reason="the first one")
    run = tmp_path / "run"
    runner = CliRunner()
    t0 = time.perf_counter()
    with running_app(settings) as client:
        before = client.post("/v1/scans?wait=30", files={"file": ("a.png", png(1))}).json()
        assert before["model"]["version"] == "v1"
        args = ["retrain", "--modality", "image", "--add-generator", NEW, "--preset", "tiny"]
        args += ["--train-set", "epochs=12", "--out", str(run), "--promote"]
        result = runner.invoke(app, args, env=WIDE)
        assert result.exit_code == 0, result.output
        assert "v2 is active" in result.output and NEW in result.output
        time.sleep(1.1)  # the active version is read at most once a second per process
        after = client.post("/v1/scans?wait=30", files={"file": ("b.png", png(2))}).json()
        assert after["status"] == "done" and after["model"]["version"] == "v2"
    seconds = time.perf_counter() - t0

    record = json.loads((run / "run.json").read_text())
    assert record["status"] == "done" and record["promoted"] and record["proposed"]
    assert record["mode"] == "fine-tune" and record["candidate"]["version"] == "v2"
    assert record["added"] == {NEW: PER_GENERATOR}  # as many as the earlier generator has
    assert set(record["seconds"]) >= {"extend", "train", "evaluate", "store", "gate", "promote"}
    rows = {r["generator"]: r for r in record["gate"]["table"]}
    print(f"\nretrain loop {seconds:.1f}s, stages {record['seconds']}")
    for r in record["gate"]["table"]:
        print(
            f"  {r['generator']}: active {r['active_auc']:.3f} -> candidate "
            f"{r['candidate_auc']:.3f} ({r['role']}, ok={r['ok']})"
        )
    # Before: the first model scores the new generator poorly; after: the candidate catches it.
    assert rows[NEW]["active_auc"] < 0.85
    # (tiny networks, and runs are not bit-identical: over nine runs the first model scored
    # X at 0.04-0.82 and the candidate at 0.87-0.98, never less than 0.13 better; the
    # bounds leave room for that spread)
    assert _report_auc(run, NEW) >= 0.85 and rows[NEW]["candidate_auc"] >= 0.85
    assert rows[NEW]["candidate_auc"] >= rows[NEW]["active_auc"] + 0.1
    assert rows[EARLIER]["ok"]  # and it kept what it caught
    corpus_gens = {r.generator_name for r in read_manifest(base["corpus"]) if r.generator_name}
    assert corpus_gens == {EARLIER, NEW}  # the corpus was extended in place
    card = model_store.stored_model(model_store.get_model(settings, "image", "v2")).card
    assert card["init_from"]["version"] == "v1" and card["retrain"]["added"] == [NEW]
    assert sorted(card["generators"]) == sorted([EARLIER, NEW])
    statuses = {r.version: r.status for r in model_store.list_models(settings, "image")}
    assert statuses == {1: "retired", 2: "active"}

    # A candidate that forgets the earlier generator: refused by the gate.
    forgets = tmp_path / "forgets"
    overrides = FIRST_TRAIN | {"exclude_families": [EARLIER]}
    train_detector(
        [base["corpus"]], forgets, preset="tiny", model_overrides=DESIGN, train_overrides=overrides
    )
    row = model_store.add_model(settings, forgets)
    active = model_store.stored_model(model_store.get_model(settings, "image", "v2"))
    gate = evaluation_gate(row.path, active.path, [base["corpus"]])
    model_store.set_gate(settings, "image", row.version, gate)
    print(
        f"  forgetting candidate: {gate['summary']}; "
        + ", ".join(
            f"{r['generator']} {r['active_auc']:.3f} -> {r['candidate_auc']:.3f}"
            for r in gate["table"]
        )
    )
    assert not gate["passed"] and EARLIER in gate["summary"]
    with pytest.raises(GateRefused, match="did not pass the evaluation gate"):
        model_store.promote(settings, "image", row.version)


@pytest.fixture
def extended(base, starter) -> Path:
    """The base corpus with the new generator in it too (the loop above adds it; alone,
    this test adds it here)."""
    corpus = base["corpus"]
    config = json.loads((corpus / "corpus.json").read_text())["config"]
    from generators.corpus.builder import load_corpus_config

    cfg = load_corpus_config(
        config | {"generators": [NEW], "per_generator": PER_GENERATOR, "preset": "tiny"}
    )
    build_corpus(cfg, corpus, source=starter)  # adds nothing when NEW is there
    return corpus


def test_retrain_from_scratch_on_a_generator_the_corpus_has_but_the_model_never_saw(
    tmp_path, base, extended, starter
) -> None:
    settings = Settings(data_dir=tmp_path, image_model=base["model"])  # no store version yet
    seen: list[str] = []
    result = retrain(
        settings,
        add_generators=[NEW],
        real="starter",  # the corpus's own source: allowed
        scratch=True,
        preset="tiny",
        out_dir=tmp_path / "run",
        on_progress=lambda stage, done, total, metrics: seen.append(stage),
        source=starter,
    )
    assert result.added == {} and result.corpus == extended.resolve()
    assert (result.mode, result.candidate_version, result.new_generators) == (
        "scratch",
        "v1",
        [NEW],
    )
    assert result.active["path"] == str(base["model"].resolve())
    assert result.proposed == result.gate["passed"] and not result.promoted
    assert "init_from" not in json.loads((result.candidate_path / "card.json").read_text())
    assert {"decode", "validation", "score test", "gate"} <= set(seen)
    record = json.loads((tmp_path / "run" / "run.json").read_text())
    assert record["status"] == "done" and record["candidate"]["version"] == "v1"
    row = model_store.get_model(settings, "image", "v1")
    assert row.status == "candidate" and row.gate["new_generators"] == [NEW]


def test_clear_errors(tmp_path, base) -> None:
    settings = Settings(data_dir=tmp_path, image_model=base["model"])
    with pytest.raises(ValueError, match="unknown generator 'no_such_generator'; valid values"):
        retrain(settings, add_generators=["no_such_generator"])
    with pytest.raises(ValueError, match="name at least one generator"):
        retrain(settings)
    with pytest.raises(ValueError, match="was built from the real source 'starter'"):
        retrain(settings, add_generators=[NEW], real=str(tmp_path))
    with pytest.raises(ValueError, match=f"already trained with generator '{EARLIER}'"):
        retrain(settings, add_generators=[EARLIER])
    # A model whose corpora are gone: --corpus must name one, built by `corpus build`.
    moved = tmp_path / "moved-model"
    shutil.copytree(base["model"], moved)
    card = json.loads((moved / "card.json").read_text())
    (moved / "card.json").write_text(json.dumps(card | {"corpora": [str(tmp_path / "gone")]}))
    lost = Settings(data_dir=tmp_path, image_model=moved)
    with pytest.raises(ValueError, match=r"corpora are gone \(.*\): give --corpus DIR"):
        retrain(lost, add_generators=[NEW])
    handmade = tmp_path / "handmade"
    handmade.mkdir()
    (handmade / "manifest.jsonl").write_text("")
    (handmade / "corpus.json").write_text('{"note": "not built by corpus build"}')
    with pytest.raises(ValueError, match="not built by `synthguard corpus build`"):
        retrain(lost, add_generators=[NEW], corpus=handmade)
    assert not (tmp_path / "runs").exists()  # refused before any work
    # The CLI says it in one line, with exit status 2.
    result = CliRunner().invoke(
        app,
        ["retrain", "--add-generator", "no_such_generator"],
        env={"SYNTHGUARD_DATA_DIR": str(tmp_path), **WIDE},
    )
    assert result.exit_code == 2 and "unknown generator 'no_such_generator'" in result.output


def test_a_training_run_through_the_api(tmp_path, base, extended) -> None:
    """POST /v1/training-runs runs the same job on its own thread (the embedded default)
    and reports progress, a log, the candidate and its gate; it never promotes."""
    settings = Settings(data_dir=tmp_path, image_model=base["model"])
    with running_app(settings) as client:
        bad = client.post("/v1/training-runs", json={"add_generators": ["no_such_generator"]})
        assert bad.status_code == 400 and "unknown generator" in bad.json()["error"]["message"]
        outside = client.post(
            "/v1/training-runs", json={"fakes": [{"name": "toolx", "path": "/etc"}]}
        )
        assert outside.status_code == 400
        body = {"add_generators": [NEW], "preset": "tiny", "train_overrides": {"epochs": 2}}
        resp = client.post("/v1/training-runs", json=body)
        assert resp.status_code == 202, resp.text
        run_id = resp.json()["id"]
        assert resp.headers["location"].endswith(f"/v1/training-runs/{run_id}")
        deadline = time.monotonic() + 120
        while True:
            view = client.get(f"/v1/training-runs/{run_id}").json()
            if view["status"] in ("done", "failed"):
                break
            assert time.monotonic() < deadline, view
            time.sleep(0.2)
        # Scans are served while it trains and after: training has its own thread.
        scan = client.post("/v1/scans?wait=30", files={"file": ("a.png", png(5))}).json()
        assert scan["status"] == "done"
        listed = client.get("/v1/training-runs").json()
    assert view["status"] == "done", view["error"]
    assert view["candidate_version"] == "v1" and view["gate"]["new_generators"] == [NEW]
    assert view["progress"]["stage"] and any("stage validation" in line for line in view["log"])
    assert view["log"][-1].split(" ", 1)[1].startswith("done: candidate v1")
    assert [r["id"] for r in listed] == [run_id]
    row = model_store.get_model(settings, "image", "v1")
    assert row.status == "candidate"  # proposed, not promoted


def test_an_ensemble_is_retrained_member_by_member(tmp_path, base) -> None:
    from detector.train.ensemble import build_ensemble

    corpus = tmp_path / "corpus"
    shutil.copytree(base["corpus"], corpus)
    ens = tmp_path / "ens"
    build_ensemble([base["model"], base["model"]], [corpus], ens, weights=[2, 1])
    settings = Settings(data_dir=tmp_path, image_model=ens)
    run = tmp_path / "run"
    retrain(settings, add_generators=[NEW], corpus=corpus, preset="tiny",
            train_overrides={"epochs": 2}, out_dir=run)  # fmt: skip
    record = json.loads((run / "run.json").read_text())
    assert record["status"] == "done" and record["mode"] == "fine-tune"
    assert record["training"]["epochs"] == 2
    card = json.loads((run / "model" / "card.json").read_text())
    assert card["architecture"] == "ensemble" and NEW in card["generators"]
    assert [m["weight"] for m in card["model_config"]["members"]] == [2.0, 1.0]
    for k in (0, 1):  # each member fine-tuned from its own weights
        member = json.loads((run / "members" / str(k) / "card.json").read_text())
        assert member["init_from"]["path"] == str((run / "members" / "start" / str(k)).resolve())
    assert record["gate"]["table"]  # and judged against the ensemble it came from
