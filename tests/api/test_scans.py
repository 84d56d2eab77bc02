"""``/v1/scans`` in the embedded default: upload, the result contract, repeats answered from
the stored result, polling, and the listing."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from tests.api._util import VERDICTS, Gate, assert_error, jpeg, png, running_app, wait_scan
from worker.runtime import get_runtime
from worker.settings import Settings


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return Settings(data_dir=tmp_path_factory.mktemp("scans"))


@pytest.fixture(scope="module")
def client(settings: Settings) -> Iterator[TestClient]:
    with running_app(settings) as c:
        yield c


@pytest.fixture(scope="module")
def image_model(client: TestClient) -> dict:
    resp = client.get("/v1/models")
    assert resp.status_code == 200, resp.text
    (model,) = [m for m in resp.json() if m["modality"] == "image"]
    return model


def test_upload_with_wait_returns_the_full_contract(
    client: TestClient, settings: Settings, image_model: dict
) -> None:
    data = png(101, (96, 128))  # 96 rows, 128 columns
    resp = client.post("/v1/scans?wait=30", files={"file": ("photo.png", data, "image/png")})
    assert resp.status_code == 200, resp.text
    view = resp.json()
    assert view["status"] == "done"
    assert view["filename"] == "photo.png"
    assert view["batch_id"] is None and view["position"] is None
    assert view["cached"] is False and view["attempts"] == 1
    assert view["error"] is None
    assert view["media"] == {
        "sha256": hashlib.sha256(data).hexdigest(),
        "kind": "image",
        "format": "png",
        "bytes": len(data),
        "width": 128,
        "height": 96,
        "duration_s": None,
    }
    assert view["model"] == {"name": image_model["name"], "version": image_model["version"]}
    score = view["score"]
    assert view["verdict"] in VERDICTS and 0.0 <= score <= 1.0
    low, high = image_model["uncertain_band"]
    expected = "synthetic" if score >= high else "authentic" if score < low else "uncertain"
    assert view["verdict"] == expected
    # The same as scoring the bytes directly with the loaded model.
    direct = get_runtime(settings).image.score(data)[0]
    assert score == pytest.approx(direct.score, abs=1e-6)
    crops = view["crops"]
    assert len(crops) >= 2
    for crop in crops:
        x, y, w, h = crop["box"]
        assert x >= 0 and y >= 0 and w > 0 and h > 0 and x + w <= 128 and y + h <= 96
        assert 0.0 <= crop["score"] <= 1.0
    top = view["top_crop"]
    assert 0 <= top < len(crops)
    assert crops[top]["score"] == max(c["score"] for c in crops)
    t = view["timings"]
    assert t["queue_ms"] >= 0 and t["decode_ms"] > 0 and t["model_ms"] > 0
    assert t["total_ms"] >= t["queue_ms"]
    assert view["created_at"] <= view["finished_at"]
    # GET answers the same contract.
    again = client.get(f"/v1/scans/{view['id']}")
    assert again.status_code == 200
    assert again.json() == view


def test_same_bytes_again_is_answered_from_the_stored_result(client: TestClient) -> None:
    data = jpeg(102, (80, 80))
    first = client.post("/v1/scans?wait=30", files={"file": ("a.jpg", data)})
    assert first.status_code == 200, first.text
    second = client.post("/v1/scans?wait=30", files={"file": ("renamed.jpg", data)})
    assert second.status_code == 200, second.text
    a, b = first.json(), second.json()
    assert a["cached"] is False and b["cached"] is True
    assert a["id"] != b["id"]
    assert b["filename"] == "renamed.jpg"
    assert b["score"] == a["score"] and b["verdict"] == a["verdict"]
    assert b["media"] == a["media"] and b["media"]["format"] == "jpeg"
    assert b["crops"] == a["crops"] and b["top_crop"] == a["top_crop"]
    assert b["attempts"] == 0  # never went to a worker
    # Even without ?wait= a repeat is answered with the finished result at once.
    third = client.post("/v1/scans", files={"file": ("third.jpg", data)})
    assert third.status_code == 200, third.text
    view = third.json()
    assert view["status"] == "done" and view["cached"] is True and view["score"] == a["score"]
    assert client.get(f"/v1/scans/{view['id']}").json() == view


def test_upload_without_wait_is_accepted_then_polled(client: TestClient) -> None:
    resp = client.post("/v1/scans", files={"file": ("later.png", png(103))})
    assert resp.status_code == 202, resp.text
    body = resp.json()
    scan_id = body["id"]
    assert body["status"] == "queued"
    assert body["status_url"] == f"http://testserver/v1/scans/{scan_id}"
    assert resp.headers["location"] == body["status_url"]
    deadline = time.monotonic() + 30
    while (view := client.get(body["status_url"]).json())["status"] != "done":
        assert view["status"] in ("queued", "running"), view
        assert time.monotonic() < deadline
        time.sleep(0.02)
    assert view["id"] == scan_id and view["verdict"] in VERDICTS
    assert 0.0 <= view["score"] <= 1.0 and view["crops"]


def test_wait_gives_up_with_202_while_the_scan_is_queued(client: TestClient) -> None:
    with Gate(client.app):
        t0 = time.monotonic()
        resp = client.post("/v1/scans?wait=0.3", files={"file": ("slow.png", png(104))})
        elapsed = time.monotonic() - t0
        assert resp.status_code == 202, resp.text
        assert 0.3 <= elapsed < 10
        scan_id = resp.json()["id"]
        assert client.get(f"/v1/scans/{scan_id}").json()["status"] == "queued"
    assert wait_scan(client, scan_id)["status"] == "done"


def test_wait_is_capped_by_max_wait_s(tmp_path: Path) -> None:
    with running_app(Settings(data_dir=tmp_path, max_wait_s=0.2)) as c, Gate(c.app):
        t0 = time.monotonic()
        resp = c.post("/v1/scans?wait=60", files={"file": ("x.png", png(105))})
        assert resp.status_code == 202, resp.text
        assert time.monotonic() - t0 < 10


def test_list_scans_newest_first(client: TestClient) -> None:
    ids = []
    for seed in (106, 107, 108):
        resp = client.post("/v1/scans", files={"file": (f"list{seed}.png", png(seed))})
        assert resp.status_code == 202
        ids.append(resp.json()["id"])
    resp = client.get("/v1/scans?limit=3")
    assert resp.status_code == 200
    listed = resp.json()["scans"]
    assert [s["id"] for s in listed] == ids[::-1]
    assert [s["filename"] for s in listed] == ["list108.png", "list107.png", "list106.png"]
    everything = client.get("/v1/scans?limit=200").json()["scans"]
    assert len(everything) > 3
    created = [s["created_at"] for s in everything]
    assert created == sorted(created, reverse=True)
    assert len(client.get("/v1/scans").json()["scans"]) == min(20, len(everything))
    for bad in (0, 201, "x"):
        assert_error(client.get(f"/v1/scans?limit={bad}"), 422, "invalid_request")


def test_unknown_scan_and_bad_wait(client: TestClient) -> None:
    assert_error(client.get("/v1/scans/nope"), 404, "not_found")
    msg = assert_error(
        client.post("/v1/scans?wait=-1", files={"file": ("x.png", png(109))}),
        422,
        "invalid_request",
    )
    assert "wait" in msg
