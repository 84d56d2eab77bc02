"""Finished-scan notifications: waiters are woken in process, and through Redis pub/sub
from another process, and a listener survives a Redis restart."""

from __future__ import annotations

import asyncio
import time

from tests.worker._services import RedisServer
from worker.notify import RedisListener, Waiters, publish


def test_waiters_wake_only_the_scans_named() -> None:
    async def run() -> tuple[bool, bool]:
        waiters = Waiters()
        a, b = waiters.register("a"), waiters.register("b")
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, waiters.notify, ["a", "zzz"])
        await asyncio.sleep(0.01)
        woke = a.is_set(), b.is_set()
        waiters.release("a", a)
        waiters.release("b", b)
        waiters.notify(["a", "b"])  # released: nothing to wake, no error
        return woke

    assert asyncio.run(run()) == (True, False)


def _wait_woken(listener_waiters: Waiters, server: RedisServer, scan_id: str) -> float:
    async def run() -> float:
        event = listener_waiters.register(scan_id)
        t0 = time.monotonic()
        deadline = t0 + 10
        while not event.is_set() and time.monotonic() < deadline:
            publish(server.client(), [scan_id])  # as a worker does after its task
            try:
                await asyncio.wait_for(event.wait(), timeout=0.2)
            except TimeoutError:
                continue
        listener_waiters.release(scan_id, event)
        assert event.is_set(), "no notification arrived"
        return time.monotonic() - t0

    return asyncio.run(run())


def test_a_published_id_wakes_the_waiter_and_survives_a_redis_restart(
    redis_server: RedisServer,
) -> None:
    waiters = Waiters()
    listener = RedisListener(redis_server.url(), waiters)
    listener.start()
    try:
        assert _wait_woken(waiters, redis_server, "scan-1") < 5
        redis_server.stop()
        time.sleep(0.5)
        redis_server.start()
        assert _wait_woken(waiters, redis_server, "scan-2") < 10
    finally:
        listener.stop()
