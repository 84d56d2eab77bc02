"""Restart recovery of the embedded default: work that a stopped process still had queued
(or running) is finished by the next process on the same data folder."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select

from tests.api._util import Gate, png, running_app, wait_batch, wait_scan
from worker.db import Batch, Scan, session_scope, utcnow
from worker.settings import Settings


def test_a_fresh_app_finishes_what_a_stopped_one_left(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "imgs").mkdir(parents=True)
    for i in range(4):
        (root / "imgs" / f"{i}.png").write_bytes(png(800 + i, (48, 48)))
    settings = Settings(
        data_dir=tmp_path / "data", batch_roots=[root], embedded_workers=1, chunk_size=2
    )
    with running_app(settings) as c, Gate(c.app) as gate:  # the pool runs nothing from here on
        scan = c.post("/v1/scans", files={"file": ("one.png", png(810))})
        assert scan.status_code == 202, scan.text
        files = [("files", (f"b{i}.png", png(820 + i, (48, 48)))) for i in range(6)]
        batch = c.post("/v1/batches", files=files)
        assert batch.status_code == 202, batch.text
        folder = c.post("/v1/batches", json={"directory": "imgs"})
        assert folder.status_code == 202, folder.text
        # The process dies: its in-memory queue is lost (1 scan, 3 chunks, 1 expansion).
        assert gate.discard_queued() == 5
    scan_id, batch_id, folder_id = scan.json()["id"], batch.json()["id"], folder.json()["id"]

    with session_scope(settings.sqlalchemy_url) as session:
        items = list(
            session.scalars(select(Scan).where(Scan.batch_id == batch_id).order_by(Scan.position))
        )
        assert [s.status for s in items] == ["queued"] * 6
        assert session.get(Scan, scan_id).status == "queued"
        assert session.get(Batch, folder_id).status == "expanding"
        # One item was being scored when the process died.
        items[0].status, items[0].started_at, items[0].attempts = "running", utcnow(), 1
        running_id = items[0].id

    with running_app(settings) as c:  # the janitor re-sends everything at start
        view = wait_batch(c, batch_id)
        assert view["status"] == "done", view
        assert view["counts"]["done"] == 6
        rows = [c.get(f"/v1/scans/{s.id}").json() for s in items]
        assert [r["attempts"] for r in rows] == [2, 1, 1, 1, 1, 1]
        assert rows[0]["id"] == running_id
        one = wait_scan(c, scan_id)
        assert one["status"] == "done" and one["attempts"] == 1 and one["score"] is not None
        folder_view = wait_batch(c, folder_id)
        assert folder_view["status"] == "done"
        assert folder_view["total"] == 4 and folder_view["counts"]["done"] == 4
