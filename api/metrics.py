"""Prometheus metrics: requests and latency (counted in the API), queue depth and scans by
status and verdict (read from the broker and the database at scrape time, so they hold
for every worker process, not just this one)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import func, select

from worker.db import Result, Scan, session_scope
from worker.dispatch import Dispatcher
from worker.settings import Settings

_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)


class ServiceCollector(Collector):
    def __init__(self, settings: Settings, dispatcher: Dispatcher) -> None:
        self.settings = settings
        self.dispatcher = dispatcher

    def collect(self) -> Iterator[Metric]:
        depth = GaugeMetricFamily(
            "synthguard_queue_depth", "Messages waiting in each queue", labels=["queue"]
        )
        for queue in ("scan", "batch"):
            try:
                depth.add_metric([queue], self.dispatcher.pending(queue))
            except Exception:  # broker away: report nothing rather than a wrong number
                continue
        yield depth
        scans = GaugeMetricFamily(
            "synthguard_scans",
            "Scans in the database by status and verdict",
            labels=["status", "verdict"],
        )
        with session_scope(self.settings.sqlalchemy_url) as session:
            rows = session.execute(
                select(Scan.status, Result.verdict, func.count())
                .outerjoin(Result, Scan.result_id == Result.id)
                .group_by(Scan.status, Result.verdict)
            ).all()
        for status, verdict, n in rows:
            scans.add_metric([status, verdict or ""], n)
        yield scans


class Metrics:
    def __init__(self, settings: Settings, dispatcher: Dispatcher) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "synthguard_http_requests",
            "HTTP requests",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "synthguard_http_request_seconds",
            "HTTP request latency",
            ["method", "route"],
            buckets=_BUCKETS,
            registry=self.registry,
        )
        self.registry.register(ServiceCollector(settings, dispatcher))


class MetricsMiddleware:
    """Counts requests by route template (``/v1/scans/{scan_id}``), not by raw path."""

    def __init__(self, app: Any, *, metrics: Callable[[], Metrics]) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500
        t0 = time.perf_counter()

        async def tracking_send(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        finally:
            method = scope["method"]
            # The router records the matched route in the (shared) scope.
            route = str(getattr(scope.get("route"), "path", "unmatched"))
            metrics = self.metrics()
            metrics.requests.labels(method, route, str(status)).inc()
            metrics.latency.labels(method, route).observe(time.perf_counter() - t0)
