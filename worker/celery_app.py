"""The Celery app that ``synthguard worker`` runs: thin tasks over the task functions.

Each worker process loads the active models once, after the fork
(``worker_process_init``), so no CUDA context is made in the parent.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import threading
from typing import Any

from billiard.process import current_process
from celery.exceptions import SoftTimeLimitExceeded
from celery.signals import worker_process_init, worker_process_shutdown

from worker.celery_config import HEARTBEAT_KEY, make_celery
from worker.db import dispose_engines
from worker.notify import publish
from worker.runtime import active_models, configure_torch, get_runtime, pick_device
from worker.scan_state import mark_crashed
from worker.settings import get_settings
from worker.tasks import run_expand_batch, run_process_scans

log = logging.getLogger(__name__)

settings = get_settings()
app = make_celery(settings)

_HEARTBEAT_S = 5.0
_stop = threading.Event()


@app.task(name="synthguard.process_scans", bind=True)
def process_scans_task(self: Any, scan_ids: list[str]) -> dict[str, int]:
    finished: list[str] = []
    try:
        report = run_process_scans(scan_ids, settings=settings, owner=self.request.id)
        finished = report.finished
    except SoftTimeLimitExceeded:
        mark_crashed(
            scan_ids,
            settings=settings,
            message=f"scoring took longer than {settings.soft_time_limit_s} s",
            owner=self.request.id,
        )
        return {"timeout": len(scan_ids)}
    finally:
        # Wakes ``?wait=`` requests in the API processes, for the gathered uploads too.
        publish(_redis(), [*scan_ids, *finished])
    return {"scored": report.scored, "cached": report.cached, "failed": report.failed}


_client: Any = None


def _redis() -> Any:
    global _client
    if _client is None:
        import redis

        _client = redis.Redis.from_url(settings.redis_url or "", socket_timeout=2)
    return _client


@app.task(name="synthguard.expand_batch")
def expand_batch_task(batch_id: str) -> int:
    return run_expand_batch(batch_id, settings=settings)


# Acknowledged on receipt and without time limits: a training run takes minutes to hours,
# longer than the broker's visibility timeout, and must not be delivered twice. A worker
# that dies mid-run leaves the run "running"; its row says when it started.
@app.task(name="synthguard.train", acks_late=False, time_limit=None, soft_time_limit=None)
def train_task(run_id: str) -> None:
    from worker.training_runs import run_training

    run_training(run_id, settings=settings)


@worker_process_init.connect
def _init_process(**_: Any) -> None:
    dispose_engines()  # never share the parent's database connections
    concurrency = int(os.environ.get("SYNTHGUARD_WORKER_CONCURRENCY", "1"))
    configure_torch(threads=settings.torch_threads, processes=concurrency)
    # Pool children are numbered 0..concurrency-1: with N GPUs, child i uses GPU i % N.
    index = getattr(current_process(), "index", 0) or 0
    runtime = get_runtime(settings, device=pick_device(index))
    log.info(
        "worker process %d: model %s %s on %s",
        os.getpid(),
        runtime.image.name,
        runtime.image.version,
        runtime.device,
    )
    threading.Thread(target=_heartbeat, args=(runtime.device,), daemon=True).start()


@worker_process_shutdown.connect
def _shutdown_process(**_: Any) -> None:
    _stop.set()


def _heartbeat(device: str) -> None:
    """Say in Redis, every few seconds, that this process is up and which models it holds."""
    import redis

    client = redis.Redis.from_url(settings.redis_url or "", socket_timeout=2)
    key = f"{HEARTBEAT_KEY}{socket.gethostname()}:{os.getpid()}"
    models = {m: {"name": i.name, "version": i.version} for m, i in active_models(settings).items()}
    value = json.dumps({"pid": os.getpid(), "device": device, "models": models})
    while not _stop.is_set():
        # The broker may be away; say it again when it is back.
        with contextlib.suppress(Exception):
            client.set(key, value, ex=int(_HEARTBEAT_S * 3))
        _stop.wait(_HEARTBEAT_S)
