"""The model store: versions, the evaluation gate, promotion and rollback, and the service
switching to a promoted model without a restart."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from api.cli import app
from detector.eval.gate import evaluation_gate
from detector.identity import default_model_dir
from detector.store import ModelStore
from detector.train.trainer import train_detector
from tests.api._util import png, running_app
from tests.detector.conftest import build_tiny_corpus
from worker import model_store
from worker.errors import Conflict, InvalidRequest, NotFound
from worker.runtime import active_models
from worker.settings import Settings

TINY = {"epochs": 6}
# The image next to its residual: a colour cast leaves no trace in the residual alone.
DESIGN = {"keep_rgb": True}


def blocky(img: np.ndarray) -> np.ndarray:
    """4x nearest-neighbour down-up resampling: a blocky generator trace."""
    h, w = img.shape[:2]
    small = Image.fromarray(img).resize((w // 4, h // 4), Image.Resampling.BOX)
    return np.asarray(small.resize((w, h), Image.Resampling.NEAREST))


def tinted(img: np.ndarray) -> np.ndarray:
    """A strong colour cast: a generator whose trace a blockiness detector cannot see."""
    out = img.astype(np.float32) * np.array([1.0, 0.55, 0.55]) + np.array([40, 0, 0])
    return np.clip(out, 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory, starter) -> Path:
    """Two easy, unrelated generator families (named for the test's story)."""
    return build_tiny_corpus(
        tmp_path_factory.mktemp("store_corpus"),
        starter,
        n_per_class=120,
        families={"fam_nearest": blocky, "fam_bilinear": tinted},
    )


@pytest.fixture(scope="module")
def without_bilinear(tmp_path_factory, corpus) -> Path:
    """A model that never saw the fam_bilinear generator."""
    out = tmp_path_factory.mktemp("without_bilinear")
    overrides = TINY | {"exclude_families": ["fam_bilinear"]}
    train_detector([corpus], out, preset="tiny", model_overrides=DESIGN, train_overrides=overrides)
    return out


@pytest.fixture(scope="module")
def with_both(tmp_path_factory, corpus) -> Path:
    out = tmp_path_factory.mktemp("with_both")
    train_detector([corpus], out, preset="tiny", model_overrides=DESIGN, train_overrides=TINY)
    return out


def test_versions_are_monotonic_per_modality_and_never_collide(tmp_path, with_both) -> None:
    store = ModelStore(tmp_path)
    report = tmp_path / "report"
    report.mkdir()
    (report / "summary.md").write_text("# report\n")
    first = store.add(with_both, report_dir=report)
    assert (first.modality, first.version, first.card["version"]) == ("image", 1, "v1")
    assert first.report is not None and (first.report / "summary.md").is_file()
    added: list[int] = []
    threads = [
        threading.Thread(target=lambda: added.append(store.add(with_both).version))
        for _ in range(4)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(added) == [2, 3, 4, 5]
    assert [s.version for s in store.versions("image")] == [1, 2, 3, 4, 5]
    assert store.versions("audio") == []
    assert store.get("image", "v3").path.name == "v3"
    with pytest.raises(ValueError, match="no image model v9"):
        store.get("image", 9)
    with pytest.raises(ValueError, match="not a model folder"):
        store.add(tmp_path / "report")


def test_promotion_needs_a_passed_gate_or_a_forced_reason(tmp_path, with_both) -> None:
    settings = Settings(data_dir=tmp_path)
    shipped = active_models(settings)["image"]
    assert shipped.folder == default_model_dir("image").resolve()
    row = model_store.add_model(settings, with_both)
    assert (row.version, row.status) == (1, "candidate")
    with pytest.raises(InvalidRequest, match="did not pass the evaluation gate"):
        model_store.promote(settings, "image", "v1")
    with pytest.raises(InvalidRequest, match="needs a reason"):
        model_store.promote(settings, "image", "v1", force=True)
    model_store.promote(settings, "image", "v1", force=True, reason="first store model")
    row = model_store.get_model(settings, "image", 1)
    assert row.status == "active" and row.forced and row.note == "first store model"
    with pytest.raises(Conflict, match="already active"):
        model_store.promote(settings, "image", 1, force=True, reason="again")
    model_store.add_model(settings, with_both)
    model_store.set_gate(settings, "image", 2, {"passed": True, "summary": "passed"})
    model_store.promote(settings, "image", 2)
    statuses = {r.version: r.status for r in model_store.list_models(settings, "image")}
    assert statuses == {1: "retired", 2: "active"}
    assert model_store.rollback(settings, "image", reason="bad").version == 1  # type: ignore[union-attr]
    statuses = {r.version: r.status for r in model_store.list_models(settings, "image")}
    assert statuses == {1: "active", 2: "retired"}
    assert model_store.get_model(settings, "image", 2).note == "rolled back: bad"
    assert model_store.rollback(settings, "image") is None  # nothing before v1
    with pytest.raises(Conflict, match="no image model is active"):
        model_store.rollback(settings, "image")
    with pytest.raises(NotFound):
        model_store.get_model(settings, "image", "v7")
    with pytest.raises(NotFound, match="unknown modality"):
        model_store.list_models(settings, "smell")


def test_the_gate_refuses_a_candidate_that_forgets_and_passes_one_that_learns(
    tmp_path, corpus, without_bilinear, with_both
) -> None:
    learns = evaluation_gate(with_both, without_bilinear, [corpus], margin=0.05)
    assert learns["new_generators"] == ["fam_bilinear"]
    rows = {r["generator"]: r for r in learns["table"]}
    assert set(rows) == {"fam_bilinear", "fam_nearest"}
    for r in learns["table"]:  # the verdict follows the rule, row by row
        if r["generator"] == "fam_bilinear":
            assert r["ok"] == (r["candidate_auc"] > r["active_auc"])
        else:
            assert r["ok"] == (r["active_auc"] - r["candidate_auc"] <= 0.05)
    assert learns["passed"] == all(r["ok"] for r in learns["table"])
    assert rows["fam_bilinear"]["candidate_auc"] > rows["fam_bilinear"]["active_auc"]
    # The other way round: the candidate never saw fam_bilinear, which the active catches.
    forgets = evaluation_gate(without_bilinear, with_both, [corpus], margin=0.01)
    assert forgets["new_generators"] == [] and not forgets["passed"]
    assert "fam_bilinear" in forgets["summary"]


def test_cli_and_api_and_a_running_service_switch_without_restart(
    tmp_path, monkeypatch, corpus, without_bilinear, with_both
) -> None:
    monkeypatch.setenv("SYNTHGUARD_DATA_DIR", str(tmp_path))
    settings = Settings(data_dir=tmp_path)
    runner = CliRunner()
    for model in (without_bilinear, with_both):
        result = runner.invoke(app, ["models", "add", str(model)])
        assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["models", "promote", "v2"])
    assert result.exit_code == 2 and "evaluation gate" in result.output
    with running_app(settings) as client:
        before = client.post("/v1/scans?wait=30", files={"file": ("a.png", png(1))}).json()
        assert before["model"]["version"] != "v1"  # the shipped model
        result = runner.invoke(
            app, ["models", "promote", "v1", "--force", "--reason", "the first one"]
        )
        assert result.exit_code == 0, result.output
        time.sleep(1.1)  # the active version is read at most once a second per process
        after = client.post("/v1/scans?wait=30", files={"file": ("b.png", png(2))}).json()
        assert after["model"]["version"] == "v1"  # within a second, no restart
        result = runner.invoke(app, ["models", "gate", "v2", "--corpus", str(corpus)])
        assert result.exit_code == 0, result.output
        assert "fam_bilinear" in result.output
        view = client.get("/v1/models/image/versions/v2").json()
        assert view["gate"]["new_generators"] == ["fam_bilinear"] and view["status"] == "candidate"
        listed = client.get("/v1/models/image/versions").json()
        assert [(m["version"], m["status"]) for m in listed] == [
            ("v1", "active"),
            ("v2", "candidate"),
        ]
        assert client.get("/v1/models/image/versions/v9").status_code == 404
        assert client.get("/v1/models/smell/versions").status_code == 404
        result = runner.invoke(app, ["models", "rollback"])
        assert result.exit_code == 0 and "shipped" in result.output
        time.sleep(1.1)
        back = client.post("/v1/scans?wait=30", files={"file": ("c.png", png(3))}).json()
        assert back["model"]["version"] == before["model"]["version"]
    result = runner.invoke(app, ["models", "list"])
    assert result.exit_code == 0 and "v2" in result.output
    shown = runner.invoke(app, ["models", "show", "v2"])
    assert shown.exit_code == 0 and "fam_bilinear" in shown.output
    assert (
        json.loads((Path(tmp_path) / "models" / "image" / "v2" / "card.json").read_text())[
            "version"
        ]
        == "v2"
    )


def test_shadow_scoring_stores_and_reports_without_answering(tmp_path, with_both) -> None:
    settings = Settings(data_dir=tmp_path)
    model_store.add_model(settings, with_both)
    model_store.set_shadow(settings, "image", "v1")
    with running_app(settings) as client:
        views = [
            client.post("/v1/scans?wait=30", files={"file": (f"{i}.png", png(40 + i))}).json()
            for i in range(3)
        ]
        assert all(v["status"] == "done" and v["model"]["version"] != "v1" for v in views)
        report = client.get("/v1/models/image/versions/v1/shadow").json()
        assert report["compared"] == 3 and report["shadow"]["version"] == "v1"
        assert 0 <= report["disagreements"] <= 3
        assert sum(report["verdict_pairs"].values()) == 3
        assert client.get("/v1/models/image/versions/v1").json()["shadow"] is True
        model_store.set_shadow(settings, "image", None)
        time.sleep(1.1)  # read at most once a second
        client.post("/v1/scans?wait=30", files={"file": ("later.png", png(50))})
        assert model_store.shadow_report(settings, "image", "v1")["compared"] == 3
    model_store.promote(settings, "image", "v1", force=True, reason="test")
    with pytest.raises(Conflict, match="cannot be its own shadow"):
        model_store.set_shadow(settings, "image", "v1")
    result = CliRunner().invoke(
        app, ["models", "shadow", "--off"], env={"SYNTHGUARD_DATA_DIR": str(tmp_path)}
    )
    assert result.exit_code == 0, result.output
