"""Operations: liveness, readiness, Prometheus metrics, the web page, the OpenAPI document,
``/v1/models``, and the ``worker`` / ``db upgrade`` commands in the embedded default."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from typer.testing import CliRunner

from api.cli import app as cli_app
from tests.api._util import Gate, assert_error, drain, png, running_app, wait_scan
from worker.runtime import active_models
from worker.settings import Settings, get_settings


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return Settings(data_dir=tmp_path_factory.mktemp("ops"))


@pytest.fixture(scope="module")
def client(settings: Settings) -> Iterator[TestClient]:
    with running_app(settings) as c:
        yield c


def samples(client: TestClient) -> dict[tuple[str, frozenset], float]:
    resp = client.get("/metrics")
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("text/plain")
    out = {}
    for family in text_string_to_metric_families(resp.text):
        for s in family.samples:
            out[(s.name, frozenset(s.labels.items()))] = s.value
    return out


def sample(values: dict, name: str, **labels: str) -> float:
    return values.get((name, frozenset(labels.items())), 0.0)


def test_healthz(client: TestClient) -> None:
    resp = client.get("/healthz")
    assert resp.status_code == 200 and resp.json() == {"status": "ok"}


def test_readyz_once_the_model_is_loaded(client: TestClient) -> None:
    deadline = time.monotonic() + 30
    while (resp := client.get("/readyz")).status_code != 200:
        assert resp.status_code == 503, resp.text
        assert resp.json()["checks"]["model"] == "error: still loading"
        assert time.monotonic() < deadline, resp.text
        time.sleep(0.1)
    assert resp.json() == {
        "status": "ready",
        "checks": {"database": "ok", "broker": "embedded", "model": "ok"},
    }


def test_metrics_count_requests_by_route_template(client: TestClient) -> None:
    first = client.post("/v1/scans?wait=30", files={"file": ("m.png", png(701))})
    assert first.status_code == 200, first.text
    scan_id = first.json()["id"]
    before = samples(client)
    for _ in range(3):
        assert client.get(f"/v1/scans/{scan_id}").status_code == 200
    assert client.get("/v1/scans/does-not-exist").status_code == 404
    assert client.get("/no/such/route").status_code == 404
    after = samples(client)

    def delta(**labels: str) -> float:
        name = "synthguard_http_requests_total"
        return sample(after, name, **labels) - sample(before, name, **labels)

    route = "/v1/scans/{scan_id}"
    assert delta(method="GET", route=route, status="200") == 3
    assert delta(method="GET", route=route, status="404") == 1
    assert delta(method="GET", route="unmatched", status="404") == 1
    assert sample(after, "synthguard_http_requests_total", method="POST", route="/v1/scans",
                  status="200") >= 1  # fmt: skip
    count = sample(after, "synthguard_http_request_seconds_count", method="GET", route=route)
    assert count >= 3
    text = client.get("/metrics").text
    assert scan_id not in text and "does-not-exist" not in text  # no raw paths as labels


def test_metrics_scans_by_status_and_verdict(client: TestClient) -> None:
    for seed in (702, 703):
        resp = client.post("/v1/scans?wait=30", files={"file": ("s.png", png(seed))})
        assert resp.status_code == 200, resp.text
    cut = png(704)
    assert (
        client.post("/v1/scans?wait=30", files={"file": ("cut.png", cut[:300])}).json()["status"]
        == "failed"
    )
    scans = client.get("/v1/scans?limit=200").json()["scans"]
    expected: dict[tuple[str, str], int] = {}
    for s in scans:
        verdict = s["verdict"] if s["status"] == "done" else ""
        expected[(s["status"], verdict)] = expected.get((s["status"], verdict), 0) + 1
    values = samples(client)
    got = {
        (dict(labels)["status"], dict(labels)["verdict"]): int(v)
        for (name, labels), v in values.items()
        if name == "synthguard_scans"
    }
    assert got == expected
    assert got[("failed", "")] >= 1


def test_metrics_queue_depth(client: TestClient) -> None:
    values = samples(client)
    assert sample(values, "synthguard_queue_depth", queue="scan") == 0
    assert sample(values, "synthguard_queue_depth", queue="batch") == 0
    with Gate(client.app):
        resp = client.post("/v1/scans", files={"file": ("q.png", png(705))})
        assert resp.status_code == 202
        batch = client.post(
            "/v1/batches",
            files=[("files", ("q1.png", png(706))), ("files", ("q2.png", png(707)))],
        )
        assert batch.status_code == 202
        values = samples(client)
        assert sample(values, "synthguard_queue_depth", queue="scan") == 1
        assert sample(values, "synthguard_queue_depth", queue="batch") == 1  # one chunk
        assert sample(values, "synthguard_scans", status="queued", verdict="") == 3
    drain(client.app)
    assert wait_scan(client, resp.json()["id"])["status"] == "done"
    values = samples(client)
    assert sample(values, "synthguard_queue_depth", queue="scan") == 0
    assert sample(values, "synthguard_scans", status="queued", verdict="") == 0


def test_the_web_page(client: TestClient) -> None:
    resp = client.get("/")
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("text/html")
    assert "<title>synthguard</title>" in resp.text
    assert 'type="file"' in resp.text and "/v1/scans?wait=" in resp.text


def test_docs_and_openapi(client: TestClient) -> None:
    docs = client.get("/docs")
    assert docs.status_code == 200 and "swagger" in docs.text.lower()
    spec = client.get("/openapi.json").json()
    assert spec["info"]["title"] == "synthguard"
    post = spec["paths"]["/v1/scans"]["post"]
    body = post["requestBody"]
    assert body["required"] is True
    schema = body["content"]["multipart/form-data"]["schema"]
    assert schema["properties"]["file"] == {"type": "string", "format": "binary"}
    assert schema["required"] == ["file"]
    assert {"200", "202"} <= set(post["responses"])
    assert any(p["name"] == "wait" for p in post["parameters"])
    batches = spec["paths"]["/v1/batches"]["post"]["requestBody"]["content"]
    assert batches["multipart/form-data"]["schema"]["properties"]["files"]["type"] == "array"
    assert set(batches["application/json"]["schema"]["properties"]) == {"directory", "manifest"}
    for path in (
        "/v1/scans/{scan_id}",
        "/v1/batches/{batch_id}",
        "/v1/batches/{batch_id}/results",
        "/v1/batches/{batch_id}/cancel",
        "/v1/batches/{batch_id}/resume",
        "/v1/models",
        "/healthz",
        "/readyz",
    ):
        assert path in spec["paths"], path
    assert "/metrics" not in spec["paths"] and "/" not in spec["paths"]


def test_models(client: TestClient, settings: Settings) -> None:
    resp = client.get("/v1/models")
    assert resp.status_code == 200
    models = {m["modality"]: m for m in resp.json()}
    assert set(models) == {"image", "audio", "video"}  # all shipped with the package
    for modality, model in models.items():
        ident = active_models(settings)[modality]
        assert (model["name"], model["version"]) == (ident.name, ident.version)
        low, high = model["uncertain_band"]
        assert 0.0 <= low <= model["threshold"] <= high <= 1.0
        assert 0.5 < model["metrics"]["test"]["overall"]["auc"] <= 1.0
        assert model["trained"]["generators"]


def test_unknown_scan_ids_do_not_reach_the_metrics_as_paths(client: TestClient) -> None:
    assert_error(client.post("/v1/batches/x/resume"), 404, "not_found")
    values = samples(client)
    assert (
        sample(
            values,
            "synthguard_http_requests_total",
            method="POST",
            route="/v1/batches/{batch_id}/resume",
            status="404",
        )
        == 1
    )


# ---- the CLI in the embedded default ------------------------------------------------------

runner = CliRunner()


@pytest.fixture
def cli_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    for name in ("SYNTHGUARD_REDIS_URL", "SYNTHGUARD_DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("SYNTHGUARD_DATA_DIR", str(tmp_path / "cli-data"))
    get_settings.cache_clear()
    yield tmp_path / "cli-data"
    get_settings.cache_clear()


def test_worker_without_a_broker_is_a_clear_error(cli_env: Path) -> None:
    result = runner.invoke(cli_app, ["worker"])
    assert result.exit_code == 2, result.output
    assert "SYNTHGUARD_REDIS_URL" in result.output
    assert "synthguard serve" in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_db_upgrade(cli_env: Path) -> None:
    result = runner.invoke(cli_app, ["db", "upgrade"])
    assert result.exit_code == 0, result.output
    assert "newest schema" in result.output
    assert (cli_env / "synthguard.db").is_file()
