"""Sending work to whoever runs tasks: Celery workers through Redis, or an in-process pool.

Both take scan ids (and batch ids), never bytes; both run the same task functions. The
database, not the queue, is the record of what is left to do: a lost message is sent
again by the janitor.
"""

from __future__ import annotations

import itertools
import logging
import queue as queue_mod
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from worker.notify import RedisListener, Waiters
from worker.settings import Settings

log = logging.getLogger(__name__)

QUEUES = ("scan", "batch", "train")
# The embedded pool serves interactive scans before batch items.
_PRIORITY = {"scan": 0, "batch": 1, "train": 2}


class Dispatcher(ABC):
    #: Waiters for finished scans; ``?wait=`` requests register here.
    waiters: Waiters

    @abstractmethod
    def send_scans(self, scan_ids: list[str], queue: str) -> None: ...

    @abstractmethod
    def send_expand(self, batch_id: str) -> None: ...

    @abstractmethod
    def send_training(self, run_id: str) -> None:
        """A training run, on the ``train`` queue: never in a scan worker's place."""

    @abstractmethod
    def pending(self, queue: str) -> int:
        """Messages waiting in ``queue`` (not yet started)."""

    def ping(self) -> bool:
        return True

    def start_notifications(self) -> None:  # noqa: B027 - optional hook
        """Begin feeding :attr:`waiters` (the API calls this; workers need not)."""

    def close(self) -> None:  # noqa: B027 - optional hook
        pass


class EmbeddedDispatcher(Dispatcher):
    """A bounded pool of threads in this process, fed by a priority queue."""

    def __init__(self, settings: Settings, *, workers: int | None = None) -> None:
        self.settings = settings
        self.waiters = Waiters()
        self._queue: queue_mod.PriorityQueue[tuple[int, int, str, Callable[[], Any] | None]] = (
            queue_mod.PriorityQueue()
        )
        self._counter = itertools.count()
        self._pending: dict[str, int] = dict.fromkeys(QUEUES, 0)
        self._lock = threading.Lock()
        self._threads = [
            threading.Thread(target=self._loop, name=f"synthguard-task-{i}", daemon=True)
            for i in range(workers or settings.embedded_workers)
        ]
        for t in self._threads:
            t.start()
        # Training has a thread of its own, one run at a time: it never holds a scan slot.
        self._training = ThreadPoolExecutor(max_workers=1, thread_name_prefix="synthguard-train")

    def send_training(self, run_id: str) -> None:
        from worker.training_runs import run_training

        with self._lock:
            self._pending["train"] += 1

        def task() -> None:
            with self._lock:
                self._pending["train"] -= 1
            try:
                run_training(run_id, settings=self.settings)
            except Exception:  # run_training records its failures; this is a last resort
                log.exception("training run %s failed", run_id)

        self._training.submit(task)

    def _submit(self, queue: str, fn: Callable[[], Any]) -> None:
        with self._lock:
            self._pending[queue] += 1
        self._queue.put((_PRIORITY[queue], next(self._counter), queue, fn))

    def send_scans(self, scan_ids: list[str], queue: str) -> None:
        from worker.tasks import run_process_scans

        ids = list(scan_ids)

        def task() -> None:
            finished: list[str] = []
            try:
                report = run_process_scans(ids, settings=self.settings, dispatcher=self)
                finished = report.finished
            finally:
                # The gathered uploads too: their own tasks may still be waiting in line.
                self.waiters.notify([*ids, *finished])

        self._submit(queue, task)

    def send_expand(self, batch_id: str) -> None:
        from worker.tasks import run_expand_batch

        self._submit(
            "batch", lambda: run_expand_batch(batch_id, settings=self.settings, dispatcher=self)
        )

    def pending(self, queue: str) -> int:
        with self._lock:
            return self._pending.get(queue, 0)

    def _loop(self) -> None:
        while True:
            _, _, queue, fn = self._queue.get()
            if fn is None:
                return
            with self._lock:
                self._pending[queue] -= 1
            try:
                fn()
            except Exception:  # the task functions record their own failures
                log.exception("embedded task failed")

    def close(self) -> None:
        for _ in self._threads:
            self._queue.put((99, next(self._counter), "train", None))
        for t in self._threads:
            t.join(timeout=5)
        self._training.shutdown(wait=False, cancel_futures=True)


class CeleryDispatcher(Dispatcher):
    """Enqueue to Celery workers through Redis."""

    def __init__(self, settings: Settings) -> None:
        import redis

        from worker.celery_config import make_celery

        self.settings = settings
        self.waiters = Waiters()
        self._listener: RedisListener | None = None
        self.app = make_celery(settings)
        self.redis = redis.Redis.from_url(
            settings.redis_url or "", socket_timeout=2, socket_connect_timeout=2
        )

    def send_scans(self, scan_ids: list[str], queue: str) -> None:
        self.app.send_task("synthguard.process_scans", args=[list(scan_ids)], queue=queue)

    def send_expand(self, batch_id: str) -> None:
        self.app.send_task("synthguard.expand_batch", args=[batch_id], queue="batch")

    def send_training(self, run_id: str) -> None:
        self.app.send_task("synthguard.train", args=[run_id], queue="train")

    def pending(self, queue: str) -> int:
        return int(self.redis.llen(queue))

    def ping(self) -> bool:
        try:
            return bool(self.redis.ping())
        except Exception:
            return False

    def start_notifications(self) -> None:
        if self._listener is None:
            self._listener = RedisListener(self.settings.redis_url or "", self.waiters)
            self._listener.start()

    def close(self) -> None:
        if self._listener is not None:
            self._listener.stop()
        self.redis.close()


def make_dispatcher(settings: Settings) -> Dispatcher:
    return EmbeddedDispatcher(settings) if settings.embedded else CeleryDispatcher(settings)


def send_in_chunks(dispatcher: Dispatcher, scan_ids: list[str], queue: str, size: int) -> None:
    for start in range(0, len(scan_ids), max(1, size)):
        dispatcher.send_scans(scan_ids[start : start + size], queue)
