"""Videos in the workers: a task scores videos one at a time within half its soft time
limit and sends the rest back to the queue (on a real database, no broker), and a real
``synthguard worker`` (own redis-server) scoring uploaded videos and a batch of them."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from tests.worker._services import (
    RedisServer,
    WorkerPool,
    add_scans,
    multipart,
    scans_by_id,
    wait_batch,
    wait_until,
)
from worker.db import migrate
from worker.dispatch import CeleryDispatcher, EmbeddedDispatcher
from worker.scanning import process_scans
from worker.settings import Settings
from worker.tasks import run_process_scans


def clips(corpus: Path, n: int, *, offset: int = 0) -> list[bytes]:
    """``n`` different videos of the corpus (real and synthetic)."""
    rows = [json.loads(line) for line in (corpus / "manifest.jsonl").read_text().splitlines()]
    paths = sorted(corpus / r["path"] for r in rows)
    assert len(paths) >= offset + n
    return [p.read_bytes() for p in paths[offset : offset + n]]


def test_time_limits_are_sized_for_the_longest_video(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("SOFT_TIME_LIMIT_S", "HARD_TIME_LIMIT_S", "MAX_VIDEO_SECONDS"):
        monkeypatch.delenv(f"SYNTHGUARD_{var}", raising=False)
    s = Settings()
    assert s.max_video_seconds == 3 * 3600 and s.video_model is None
    assert (s.soft_time_limit_s, s.hard_time_limit_s) == (720, 780)  # a 3-hour video
    assert (Settings(max_video_seconds=60).soft_time_limit_s) == 240  # never below 240 s
    monkeypatch.setenv("SYNTHGUARD_MAX_VIDEO_SECONDS", "7200")
    assert (Settings().soft_time_limit_s, Settings().hard_time_limit_s) == (540, 600)
    monkeypatch.setenv("SYNTHGUARD_SOFT_TIME_LIMIT_S", "100")  # given: kept as it is
    assert (Settings().soft_time_limit_s, Settings().hard_time_limit_s) == (100, 160)
    monkeypatch.setenv("SYNTHGUARD_HARD_TIME_LIMIT_S", "120")
    assert (Settings().soft_time_limit_s, Settings().hard_time_limit_s) == (100, 120)
    monkeypatch.delenv("SYNTHGUARD_SOFT_TIME_LIMIT_S")
    assert Settings().soft_time_limit_s == 96  # under a given hard limit
    monkeypatch.setenv("SYNTHGUARD_VIDEO_MODEL", "/models/video")
    assert Settings().video_model == Path("/models/video")


def test_a_task_scores_videos_in_its_time_and_requeues_the_rest(
    tmp_path: Path, tiny_video_model: Path, tiny_video_corpus: Path
) -> None:
    # No time for a second video: each task scores its first one and releases the rest.
    settings = Settings(
        data_dir=tmp_path, video_model=tiny_video_model, soft_time_limit_s=0, hard_time_limit_s=60
    )
    migrate(settings.sqlalchemy_url)
    ids = add_scans(settings, clips(tiny_video_corpus, 3), queue="batch")
    report = process_scans(ids, settings=settings)
    assert (report.claimed, report.scored, report.failed) == (3, 1, 0)
    assert report.released == {"batch": ids[1:]} and report.finished == ids[:1]
    scans = scans_by_id(settings.sqlalchemy_url, ids)
    assert scans[ids[0]].status == "done" and scans[ids[0]].attempts == 1
    for i in ids[1:]:  # as before their claim: queued, unowned, no try counted
        s = scans[i]
        assert (s.status, s.owner, s.started_at, s.attempts) == ("queued", None, None, 0)
    # Through the task function, the released videos are sent again until all are done.
    dispatcher = EmbeddedDispatcher(settings, workers=1)
    try:
        dispatcher.send_scans(ids[1:], "batch")
        wait_until(
            lambda: (
                {s.status for s in scans_by_id(settings.sqlalchemy_url, ids).values()} == {"done"}
            ),
            60,
            what="every video done",
        )
    finally:
        dispatcher.close()
    assert {s.attempts for s in scans_by_id(settings.sqlalchemy_url, ids).values()} == {1}


def test_images_come_before_videos_and_are_never_released(
    tmp_path: Path, tiny_video_model: Path, tiny_video_corpus: Path
) -> None:
    from tests.worker._services import png

    settings = Settings(
        data_dir=tmp_path, video_model=tiny_video_model, soft_time_limit_s=0, hard_time_limit_s=60
    )
    migrate(settings.sqlalchemy_url)
    videos = clips(tiny_video_corpus, 2, offset=3)
    ids = add_scans(settings, [videos[0], png(1), videos[1], png(2)], queue="batch")
    report = process_scans(ids, settings=settings)
    assert report.scored == 3 and report.released == {"batch": [ids[2]]}


# --- a real worker --------------------------------------------------------------------


@pytest.fixture(scope="module")
def service(
    redis_server: RedisServer,
    start_workers,
    tmp_path_factory: pytest.TempPathFactory,
    tiny_video_model: Path,
) -> Iterator[tuple[Settings, WorkerPool]]:
    data_dir = tmp_path_factory.mktemp("video_data")
    # A soft limit of 12 s: a task scores tiny clips (about 1 s each) for 6 s at most.
    limits = {"SYNTHGUARD_SOFT_TIME_LIMIT_S": "12", "SYNTHGUARD_HARD_TIME_LIMIT_S": "60"}
    settings = Settings(
        redis_url=redis_server.url(),
        data_dir=data_dir,
        video_model=tiny_video_model,
        soft_time_limit_s=12,
        hard_time_limit_s=60,
        chunk_size=8,
        redispatch_after_s=120,  # nothing is resent by the janitor unless a task asks
        janitor_interval_s=1,
    )
    migrate(settings.sqlalchemy_url)
    env = {
        "SYNTHGUARD_REDIS_URL": redis_server.url(),
        "SYNTHGUARD_DATA_DIR": str(data_dir),
        "SYNTHGUARD_VIDEO_MODEL": str(tiny_video_model),
        "SYNTHGUARD_CHUNK_SIZE": "8",
        **limits,
    }
    pool = start_workers(1, env)
    pool.wait_ready(redis_server.client(), 120)
    yield settings, pool


@pytest.mark.slow
def test_a_celery_worker_scores_videos(
    service: tuple[Settings, WorkerPool], redis_server: RedisServer, tiny_video_corpus: Path
) -> None:
    settings, pool = service
    heartbeats = pool.heartbeat_pids(redis_server.client())
    assert heartbeats
    data = clips(tiny_video_corpus, 1, offset=5)[0]
    with TestClient(create_app(settings)) as client:
        resp = client.post("/v1/scans?wait=60", files={"file": ("v.mp4", data, "video/mp4")})
        assert resp.status_code == 200, resp.text
        view = resp.json()
        assert view["status"] == "done" and view["media"]["kind"] == "video", view
        assert view["model"]["name"] == "video_faces" and view["frames"]
        assert view["frames"][view["top_frame"]]["score"] == max(f["score"] for f in view["frames"])
        assert set(view["parts"]) == {"visual", "voice"}
        # A batch of eight videos in one chunk: more than one task's time; none is lost,
        # none fails, each is tried once.
        files = [(f"v{i}.mp4", d) for i, d in enumerate(clips(tiny_video_corpus, 8, offset=6))]
        resp = client.post("/v1/batches", files=multipart(files))
        assert resp.status_code == 202, resp.text
        batch = wait_batch(client, resp.json()["id"], 120)
        assert batch["status"] == "done" and batch["counts"]["done"] == 8, batch
        rows = client.get(f"/v1/batches/{batch['id']}/results").text.splitlines()
        assert all(json.loads(r)["attempts"] == 1 for r in rows)
        assert all(json.loads(r)["frames"] for r in rows)
    # A task with no time left (run here) sends the videos it released through the broker,
    # and the worker scores them.
    ids = add_scans(settings, clips(tiny_video_corpus, 3, offset=14), queue="batch")
    dispatcher = CeleryDispatcher(settings)
    try:
        report = run_process_scans(
            ids, settings=settings.model_copy(update={"soft_time_limit_s": 0}),
            dispatcher=dispatcher,
        )  # fmt: skip
    finally:
        dispatcher.close()
    assert report.scored == 1 and report.released == {"batch": ids[1:]}
    wait_until(
        lambda: {s.status for s in scans_by_id(settings.sqlalchemy_url, ids).values()} == {"done"},
        60,
        what="the released videos done by the worker",
    )
