"""Finished-scan notifications, so that ``?wait=`` answers as soon as a result is written.

Waiters register a scan id and get an ``asyncio.Event``; ``notify(ids)`` sets the
events of those ids from any thread. In the embedded default the pool notifies
directly; Celery workers publish the ids on a Redis channel that the API listens to.
Notifications are a fast path only: a waiter still re-reads the database, and polls it
slowly in case a message is missed.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from collections.abc import Iterable
from typing import Any

log = logging.getLogger(__name__)

CHANNEL = "synthguard:finished"


class Waiters:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._events: dict[str, list[tuple[asyncio.AbstractEventLoop, asyncio.Event]]] = {}

    def register(self, scan_id: str) -> asyncio.Event:
        """Call from the event loop; pair with :meth:`release`."""
        event = asyncio.Event()
        with self._lock:
            self._events.setdefault(scan_id, []).append((asyncio.get_running_loop(), event))
        return event

    def release(self, scan_id: str, event: asyncio.Event) -> None:
        with self._lock:
            entries = [e for e in self._events.get(scan_id, []) if e[1] is not event]
            if entries:
                self._events[scan_id] = entries
            else:
                self._events.pop(scan_id, None)

    def notify(self, scan_ids: Iterable[str]) -> None:
        """Wake the waiters of ``scan_ids`` (thread-safe)."""
        with self._lock:
            hits = [e for i in scan_ids for e in self._events.get(i, [])]
        for loop, event in hits:
            try:
                loop.call_soon_threadsafe(event.set)
            except RuntimeError:  # that loop has closed
                continue


def publish(redis_client: Any, scan_ids: list[str]) -> None:
    """From a worker: tell API processes that these scans may be finished."""
    try:
        redis_client.publish(CHANNEL, json.dumps(scan_ids))
    except Exception:  # a missed notification only costs the waiter a slow poll
        log.debug("could not publish finished scans", exc_info=True)


class RedisListener:
    """A daemon thread that feeds published ids to :class:`Waiters`, reconnecting on error."""

    def __init__(self, redis_url: str, waiters: Waiters) -> None:
        self.redis_url = redis_url
        self.waiters = waiters
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="synthguard-notify", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        import redis

        while not self._stop.is_set():
            try:
                client = redis.Redis.from_url(self.redis_url, socket_timeout=None)
                pubsub = client.pubsub(ignore_subscribe_messages=True)
                pubsub.subscribe(CHANNEL)
                while not self._stop.is_set():
                    message = pubsub.get_message(timeout=1.0)
                    if message and message.get("type") == "message":
                        self.waiters.notify(json.loads(message["data"]))
            except Exception:  # the broker is away: try again shortly
                log.debug("notification listener lost Redis", exc_info=True)
                self._stop.wait(1.0)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
