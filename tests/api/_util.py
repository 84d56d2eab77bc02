"""Helpers for the API tests: small images, polling, error checks, and a gate that holds
the embedded pool so that work sent meanwhile stays queued (deterministic cancel/restart)."""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import torch
from fastapi import FastAPI
from fastapi.testclient import TestClient

from api.app import create_app
from tests._media import encode, photo_like
from worker.dispatch import EmbeddedDispatcher
from worker.settings import Settings

FINISHED = ("done", "failed", "canceled")
VERDICTS = ("synthetic", "uncertain", "authentic")


def png(seed: int, size: tuple[int, int] = (64, 64)) -> bytes:
    return encode(photo_like(seed, size), "PNG")


def jpeg(seed: int, size: tuple[int, int] = (64, 64)) -> bytes:
    return encode(photo_like(seed, size), "JPEG", quality=90)


@contextmanager
def running_app(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as client:
        yield client


def assert_error(resp: httpx.Response, status: int, code: str) -> str:
    """The response has ``status`` and the error shape with ``code``; returns the message."""
    assert resp.status_code == status, resp.text
    body = resp.json()
    assert body["error"]["code"] == code, body
    message = body["error"]["message"]
    assert isinstance(message, str) and message
    return message


def wait_scan(
    client: TestClient,
    scan_id: str,
    *,
    headers: dict[str, str] | None = None,
    timeout: float = 30.0,
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        resp = client.get(f"/v1/scans/{scan_id}", headers=headers)
        assert resp.status_code == 200, resp.text
        view = resp.json()
        if view["status"] in FINISHED:
            return view
        assert time.monotonic() < deadline, f"scan still {view['status']} after {timeout} s"
        time.sleep(0.02)


def wait_batch(
    client: TestClient,
    batch_id: str,
    *,
    headers: dict[str, str] | None = None,
    timeout: float = 30.0,
    until: tuple[str, ...] = ("done", "canceled", "failed"),
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        resp = client.get(f"/v1/batches/{batch_id}", headers=headers)
        assert resp.status_code == 200, resp.text
        view = resp.json()
        if view["status"] in until:
            return view
        assert time.monotonic() < deadline, f"batch still {view} after {timeout} s"
        time.sleep(0.02)


def dispatcher_of(app: FastAPI) -> EmbeddedDispatcher:
    dispatcher = app.state.dispatcher
    assert isinstance(dispatcher, EmbeddedDispatcher)
    return dispatcher


class Gate:
    """Occupies every thread of an app's embedded pool until the ``with`` block ends.

    Work sent inside the block stays in the pool's queue (``queued`` in the database), so
    a test can act on queued work without racing the workers.
    """

    def __init__(self, app: FastAPI) -> None:
        self.dispatcher = dispatcher_of(app)
        self._release = threading.Event()
        self._entered = threading.Semaphore(0)
        self._threads = len(self.dispatcher._threads)

    def _hold(self) -> None:
        self._entered.release()
        self._release.wait(60)

    def __enter__(self) -> Gate:
        for _ in range(self._threads):  # the scan queue goes before batch work
            self.dispatcher._submit("scan", self._hold)
        for _ in range(self._threads):
            assert self._entered.acquire(timeout=60), "the pool never freed a thread"
        return self

    def discard_queued(self) -> int:
        """Drop every message waiting in the pool: what a killed process loses."""
        n = 0
        while True:
            try:
                self.dispatcher._queue.get_nowait()
            except queue.Empty:
                return n
            n += 1

    def __exit__(self, *exc: object) -> None:
        self._release.set()


def drain(app: FastAPI, timeout: float = 30.0) -> None:
    """Return once every task sent so far has finished running."""
    dispatcher = dispatcher_of(app)
    deadline = time.monotonic() + timeout
    while dispatcher.pending("scan") or dispatcher.pending("batch"):
        assert time.monotonic() < deadline, "the pool did not empty"
        time.sleep(0.01)
    with Gate(app):  # every thread took a hold task: the tasks before it are done
        pass


def voice_model(folder: Path) -> Path:
    """A tiny voice model with random weights: enough for the service (not for accuracy)."""
    from detector.models import create, save_model
    from detector.models.checkpoint import model_config_dict

    torch.manual_seed(0)
    model = create("audio_cnn", preset="tiny")
    card = {
        "modality": "audio",
        "architecture": "audio_cnn",
        "model_config": model_config_dict(model),
        "train_config": {},
        "calibration": {
            "temperature": 1.0,
            "threshold": 0.5,
            "uncertain_low": 0.4,
            "uncertain_high": 0.6,
            "val_eer": None,
        },
    }
    return save_model(model, card, folder)
