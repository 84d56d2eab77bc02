"""``/v1/batches``: uploaded batches with bad files among good ones, server-side folders and
manifests under the batch roots (and nothing outside them), reports, cancel and resume."""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.routes.batches import CSV_FIELDS
from tests._media import write_bad_folder
from tests.api._util import (
    FINISHED,
    VERDICTS,
    Gate,
    assert_error,
    drain,
    png,
    running_app,
    wait_batch,
)
from worker.settings import Settings


def api_codes(codes: dict[str, str | None]) -> dict[str, str | None]:
    # The corpus tools skip thumbnails; the service scores them (padded).
    return {rel: (None if code == "too_small" else code) for rel, code in codes.items()}


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = Path(os.path.realpath(tmp_path_factory.mktemp("batches")))
    root = base / "root"
    (root / "lists").mkdir(parents=True)
    outside = base / "outside"
    outside.mkdir()
    (outside / "secret.png").write_bytes(png(301))
    (outside / "m.txt").write_text("secret.png\n")
    (root / "link_out").symlink_to(outside, target_is_directory=True)
    (root / "lists" / "link_file.png").symlink_to(outside / "secret.png")
    return root


@pytest.fixture(scope="module")
def mixed(root: Path) -> dict[str, str | None]:
    """root/mixed: write_bad_folder's files plus a link that leads out of the root."""
    codes = api_codes(write_bad_folder(root / "mixed"))
    (root / "mixed" / "escape.png").symlink_to(root.parent / "outside" / "secret.png")
    return {**codes, "escape.png": "forbidden_path"}


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory, root: Path) -> Iterator[TestClient]:
    settings = Settings(
        data_dir=tmp_path_factory.mktemp("batches-data"), batch_roots=[root], chunk_size=4
    )
    with running_app(settings) as c:
        yield c


def results(client: TestClient, batch_id: str, query: str = "") -> list[dict[str, Any]]:
    resp = client.get(f"/v1/batches/{batch_id}/results{query}")
    assert resp.status_code == 200, resp.text
    assert resp.headers["content-type"].startswith("application/x-ndjson")
    lines = resp.text.splitlines()
    assert resp.text == "".join(line + "\n" for line in lines)  # one JSON object a line
    return [json.loads(line) for line in lines]


def check_items(rows: list[dict[str, Any]], expected: dict[str, str | None], rel) -> None:
    """Every expected file is there once, done and scored or failed with its code."""
    by_rel = {rel(r["filename"]): r for r in rows}
    assert sorted(by_rel) == sorted(expected)
    for name, code in expected.items():
        row = by_rel[name]
        if code is None:
            assert row["status"] == "done", (name, row)
            assert row["verdict"] in VERDICTS and 0.0 <= row["score"] <= 1.0
            assert row["crops"] and row["model"]["name"]
        else:
            assert row["status"] == "failed", (name, row)
            assert row["error"]["code"] == code, (name, row["error"])
            assert row["verdict"] == "not_applicable" and row["score"] is None


@pytest.fixture(scope="module")
def upload_batch(client: TestClient, mixed: dict[str, str | None], root: Path) -> dict[str, Any]:
    """A finished multipart batch of the mixed files (in sorted order)."""
    names = sorted(mixed)
    files = [("files", (name, (root / "mixed" / name).read_bytes())) for name in names]
    resp = client.post("/v1/batches", files=files)
    assert resp.status_code == 202, resp.text
    created = resp.json()
    assert resp.headers["location"] == created["status_url"]
    assert created["source_kind"] == "upload" and created["total"] == len(names)
    view = wait_batch(client, created["id"])
    return {"view": view, "names": names, "created": created}


def test_upload_batch_scores_good_files_and_fails_bad_ones(
    client: TestClient, upload_batch: dict[str, Any], mixed: dict[str, str | None]
) -> None:
    view, names = upload_batch["view"], upload_batch["names"]
    # Uploaded, the escaping link is just the bytes of a PNG.
    expected = {**mixed, "escape.png": None}
    n_bad = sum(code is not None for code in expected.values())
    assert view["status"] == "done"
    assert view["total"] == len(names)
    assert view["counts"] == {
        "queued": 0,
        "running": 0,
        "done": len(names) - n_bad,
        "failed": n_bad,
        "canceled": 0,
    }
    assert view["progress"] == 1.0 and view["finished_at"] is not None
    assert view["error"] is None
    assert view["results_url"].endswith(f"/v1/batches/{view['id']}/results")
    rows = results(client, view["id"])
    assert [r["position"] for r in rows] == list(range(len(names)))
    assert [r["filename"] for r in rows] == names  # the names as uploaded, folders and all
    assert {r["batch_id"] for r in rows} == {view["id"]}
    check_items(rows, expected, rel=lambda f: f)
    by_name = {r["filename"]: r for r in rows}
    assert by_name["sub/deeper/png_named.jpg"]["media"]["format"] == "png"  # by content
    assert by_name["no_extension"]["media"]["format"] == "webp"


def test_batch_results_as_csv(client: TestClient, upload_batch: dict[str, Any]) -> None:
    batch_id = upload_batch["view"]["id"]
    resp = client.get(f"/v1/batches/{batch_id}/results?format=csv")
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("text/csv")
    assert f'filename="{batch_id}.csv"' in resp.headers["content-disposition"]
    reader = csv.reader(io.StringIO(resp.text))
    header = next(reader)
    assert tuple(header) == CSV_FIELDS
    rows = [dict(zip(header, r, strict=True)) for r in reader]
    jsonl = results(client, batch_id)
    assert len(rows) == len(jsonl) == upload_batch["view"]["total"]
    for row, item in zip(rows, jsonl, strict=True):
        assert int(row["position"]) == item["position"]
        assert row["id"] == item["id"] and row["status"] == item["status"]
        assert row["filename"] == item["filename"]
        if item["status"] == "done":
            assert float(row["score"]) == pytest.approx(item["score"])
            assert row["verdict"] == item["verdict"]
            assert row["sha256"] == item["media"]["sha256"]
            top = item["crops"][item["top_crop"]]["box"]
            assert row["top_crop_box"] == " ".join(map(str, top))
            assert row["error_code"] == ""
        else:
            assert row["error_code"] == item["error"]["code"]
            assert row["score"] == "" and row["top_crop_box"] == ""


def test_batch_results_pages(client: TestClient, upload_batch: dict[str, Any]) -> None:
    batch_id, total = upload_batch["view"]["id"], upload_batch["view"]["total"]
    seen: list[int] = []
    after = -1
    while page := results(client, batch_id, f"?after={after}&limit=4"):
        assert len(page) <= 4
        seen += [r["position"] for r in page]
        after = page[-1]["position"]
    assert seen == list(range(total))
    assert [r["position"] for r in results(client, batch_id, "?after=2&limit=3")] == [3, 4, 5]
    assert results(client, batch_id, f"?after={total - 1}") == []
    assert len(results(client, batch_id, "?limit=1")) == 1
    csv_page = client.get(f"/v1/batches/{batch_id}/results?format=csv&after=0&limit=2").text
    assert len(csv_page.strip().splitlines()) == 3  # header + 2
    for bad in ("limit=0", "after=-2", "format=xml"):
        resp = client.get(f"/v1/batches/{batch_id}/results?{bad}")
        assert_error(resp, 422, "invalid_request")


def test_directory_batch_under_the_root(
    client: TestClient, root: Path, mixed: dict[str, str | None]
) -> None:
    resp = client.post("/v1/batches", json={"directory": "mixed"})  # relative to the root
    assert resp.status_code == 202, resp.text
    created = resp.json()
    assert created["source_kind"] == "directory"
    assert created["source"] == str(root / "mixed")
    view = wait_batch(client, created["id"])
    assert view["status"] == "done", view
    assert view["total"] == len(mixed)
    n_bad = sum(code is not None for code in mixed.values())
    assert view["counts"]["done"] == len(mixed) - n_bad
    assert view["counts"]["failed"] == n_bad
    rows = results(client, view["id"])
    assert [r["position"] for r in rows] == list(range(len(mixed)))
    check_items(rows, mixed, rel=lambda f: Path(f).relative_to(root / "mixed").as_posix())
    # The walk order is sorted, depth first.
    rels = [Path(r["filename"]).relative_to(root / "mixed").as_posix() for r in rows]
    assert rels.index("bomb.png") < rels.index("sub/deeper/png_named.jpg")
    assert rels.index("sub/deeper/png_named.jpg") < rels.index("sub/good.jpg")
    # An absolute path inside the root works too.
    resp = client.post("/v1/batches", json={"directory": str(root / "mixed" / "sub")})
    assert resp.status_code == 202, resp.text
    sub = wait_batch(client, resp.json()["id"])
    assert sub["status"] == "done" and sub["total"] == 2 and sub["counts"]["done"] == 2


def test_manifest_batch(client: TestClient, root: Path) -> None:
    outside = root.parent / "outside" / "secret.png"
    lines = [
        "# a comment, then a blank line",
        "",
        "../mixed/good.png",  # relative to the manifest's folder
        str(root / "mixed" / "sub" / "good.jpg"),
        json.dumps({"path": "../mixed/photo.bmp", "label": "real"}),
        json.dumps({"no_path": 1}),
        str(outside),
        "../../outside/secret.png",
        "link_file.png",  # a link inside the root to a file outside
        "../mixed/truncated.jpg",
        "missing.png",
    ]
    (root / "lists" / "m.txt").write_text("\n".join(lines) + "\n")
    resp = client.post("/v1/batches", json={"manifest": "lists/m.txt"})
    assert resp.status_code == 202, resp.text
    assert resp.json()["source_kind"] == "manifest"
    view = wait_batch(client, resp.json()["id"])
    assert view["status"] == "done", view
    rows = results(client, view["id"])
    got = [(r["position"], r["status"], (r["error"] or {}).get("code")) for r in rows]
    assert got == [
        (0, "done", None),
        (1, "done", None),
        (2, "done", None),
        (3, "failed", "bad_manifest"),
        (4, "failed", "forbidden_path"),
        (5, "failed", "forbidden_path"),
        (6, "failed", "forbidden_path"),
        (7, "failed", "corrupt_media"),
        (8, "failed", "not_found"),
    ]
    assert rows[0]["filename"] == str(root / "lists" / "../mixed/good.png")
    assert "outside the batch roots" in rows[4]["error"]["message"]
    assert view["counts"] == {"queued": 0, "running": 0, "done": 3, "failed": 6, "canceled": 0}


@pytest.mark.parametrize(
    "body",
    [
        {"directory": "../outside"},
        {"directory": "mixed/../../outside"},
        {"directory": "link_out"},  # a link inside the root to a folder outside
        {"directory": "/"},
        {"directory": "ABSOLUTE_OUTSIDE"},
        {"directory": "mixed\x00"},
        {"manifest": "../outside/m.txt"},
        {"manifest": "link_out/m.txt"},
        {"manifest": "ABSOLUTE_OUTSIDE/m.txt"},
    ],
)
def test_paths_outside_the_roots_are_forbidden(
    client: TestClient, root: Path, body: dict[str, str]
) -> None:
    outside = str(root.parent / "outside")
    body = {k: v.replace("ABSOLUTE_OUTSIDE", outside) for k, v in body.items()}
    assert_error(client.post("/v1/batches", json=body), 400, "forbidden_path")


@pytest.mark.parametrize(
    "body",
    [{"directory": "nope"}, {"directory": "mixed/good.png"}, {"manifest": "mixed"}],
)
def test_missing_sources_are_400(client: TestClient, mixed: dict, body: dict[str, str]) -> None:
    assert_error(client.post("/v1/batches", json=body), 400, "not_found")


def test_progress_counts_the_items_finished_so_far(client: TestClient) -> None:
    files = [("files", ("text.png", b"not an image\n"))]
    files += [("files", (f"p{i}.png", png(430 + i, (48, 48)))) for i in range(3)]
    with Gate(client.app):
        resp = client.post("/v1/batches", files=files)
        assert resp.status_code == 202, resp.text
        view = client.get(f"/v1/batches/{resp.json()['id']}").json()
        assert view["status"] == "running" and view["total"] == 4
        assert view["counts"] == {"queued": 3, "running": 0, "done": 0, "failed": 1, "canceled": 0}
        assert view["progress"] == 0.25 and view["finished_at"] is None
    view = wait_batch(client, view["id"])
    assert view["status"] == "done" and view["progress"] == 1.0
    assert view["counts"] == {"queued": 0, "running": 0, "done": 3, "failed": 1, "canceled": 0}


def test_cancel_queued_items_then_resume(client: TestClient) -> None:
    files = [("files", (f"c{i}.png", png(400 + i, (48, 48)))) for i in range(12)]
    with Gate(client.app):  # nothing runs: every item stays queued
        resp = client.post("/v1/batches", files=files)
        assert resp.status_code == 202, resp.text
        batch_id = resp.json()["id"]
        assert resp.json()["counts"]["queued"] == 12
        canceled = client.post(f"/v1/batches/{batch_id}/cancel")
        assert canceled.status_code == 200, canceled.text
        view = canceled.json()
        assert view["status"] == "canceled" and view["finished_at"] is not None
        assert view["counts"] == {"queued": 0, "running": 0, "done": 0, "failed": 0, "canceled": 12}
        assert view["progress"] == 1.0
    drain(client.app)  # the tasks sent before the cancel ran, and skipped every item
    view = client.get(f"/v1/batches/{batch_id}").json()
    assert view["status"] == "canceled" and view["counts"]["canceled"] == 12
    rows = results(client, batch_id)
    assert {r["status"] for r in rows} == {"canceled"}
    assert {r["verdict"] for r in rows} == {"not_applicable"}
    assert {r["attempts"] for r in rows} == {0}
    resumed = client.post(f"/v1/batches/{batch_id}/resume")
    assert resumed.status_code == 200, resumed.text
    assert resumed.json()["status"] == "running"
    assert resumed.json()["counts"]["canceled"] == 0
    view = wait_batch(client, batch_id)
    assert view["status"] == "done"
    assert view["counts"] == {"queued": 0, "running": 0, "done": 12, "failed": 0, "canceled": 0}
    assert all(r["verdict"] in VERDICTS for r in results(client, batch_id))
    # A finished batch does not resume, and canceling it changes nothing.
    assert_error(client.post(f"/v1/batches/{batch_id}/resume"), 409, "conflict")
    again = client.post(f"/v1/batches/{batch_id}/cancel")
    assert again.status_code == 200
    assert again.json()["status"] == "done" and again.json()["counts"]["done"] == 12


def test_cancel_while_a_folder_is_expanding_then_resume(client: TestClient, root: Path) -> None:
    folder = root / "expand"
    folder.mkdir()
    for i in range(5):
        (folder / f"{i}.png").write_bytes(png(420 + i, (48, 48)))
    with Gate(client.app):
        resp = client.post("/v1/batches", json={"directory": "expand"})
        assert resp.status_code == 202, resp.text
        batch_id = resp.json()["id"]
        assert resp.json()["status"] == "expanding" and resp.json()["total"] == 0
        view = client.post(f"/v1/batches/{batch_id}/cancel").json()
        assert view["status"] == "canceled" and view["total"] == 0
    drain(client.app)  # the expansion ran and saw the cancel: no items
    view = client.get(f"/v1/batches/{batch_id}").json()
    assert view["status"] == "canceled" and view["total"] == 0
    resumed = client.post(f"/v1/batches/{batch_id}/resume")
    assert resumed.status_code == 200, resumed.text
    # Expanding again; the pool may already have listed the 5 files when the answer is built.
    assert resumed.json()["status"] in ("expanding", "running")
    view = wait_batch(client, batch_id)
    assert view["status"] == "done" and view["total"] == 5 and view["counts"]["done"] == 5


def test_cancel_racing_the_workers_keeps_every_item_accounted_for(client: TestClient) -> None:
    files = [("files", (f"r{i}.png", png(500 + i, (32, 32)))) for i in range(40)]
    resp = client.post("/v1/batches", files=files)
    assert resp.status_code == 202, resp.text
    batch_id = resp.json()["id"]
    view = client.post(f"/v1/batches/{batch_id}/cancel").json()
    assert view["status"] in ("canceled", "done")  # it may have finished already
    drain(client.app)
    view = client.get(f"/v1/batches/{batch_id}").json()
    counts = view["counts"]
    assert counts["queued"] == counts["running"] == 0
    assert counts["done"] + counts["failed"] + counts["canceled"] == 40 == view["total"]
    assert all(r["status"] in FINISHED for r in results(client, batch_id))
    if view["status"] == "canceled":
        assert client.post(f"/v1/batches/{batch_id}/resume").status_code == 200
    view = wait_batch(client, batch_id)
    assert view["status"] == "done"
    assert view["counts"]["done"] == 40 and view["counts"]["canceled"] == 0


def test_unknown_batch_is_404(client: TestClient) -> None:
    for method, path in [
        ("GET", "/v1/batches/nope"),
        ("GET", "/v1/batches/nope/results"),
        ("POST", "/v1/batches/nope/cancel"),
        ("POST", "/v1/batches/nope/resume"),
    ]:
        assert_error(client.request(method, path), 404, "not_found")
