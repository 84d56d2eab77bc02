"""Retraining jobs asked for through the API: a row per run, the job itself
(``worker.retrain.retrain``) run by a worker on the ``train`` queue (or, in the embedded
default, by one thread of its own), so training never takes a scan worker's place.

A run through the API proposes; it never promotes. Promotion stays an operator's act
(``synthguard models promote``), with the gate's table to read first.
"""

from __future__ import annotations

import logging
import threading
import time
import traceback
from pathlib import Path
from typing import Any

from sqlalchemy import select

from worker.db import TrainingRun, migrate, session_scope, utcnow
from worker.errors import InvalidRequest, NotFound
from worker.paths import resolve_under_roots
from worker.settings import Settings

log = logging.getLogger(__name__)

PROGRESS_EVERY_S = 1.0  # progress rows are written at most this often


def validate_request(request: dict[str, Any], settings: Settings) -> dict[str, Any]:
    """Check what can be checked before queueing: generators known and of the modality,
    fakes folders under the batch roots. Raises ``InvalidRequest``."""
    from generators.corpus.fakes import FakesSpec
    from worker.retrain import check_generators

    fakes = []
    for item in request.get("fakes", []):
        path = resolve_under_roots(item["path"], settings.batch_roots)
        fakes.append(FakesSpec(item["name"], str(path), item.get("family") or ""))
    try:
        check_generators(request["modality"], list(request.get("add_generators", [])), fakes)
    except (ValueError, TypeError) as exc:
        raise InvalidRequest(str(exc)) from None
    return request | {
        "fakes": [{"name": f.name, "path": f.path, "family": f.family} for f in fakes]
    }


def create_run(settings: Settings, tenant_id: int, request: dict[str, Any]) -> str:
    request = validate_request(request, settings)
    migrate(settings.sqlalchemy_url)
    with session_scope(settings.sqlalchemy_url) as session:
        run = TrainingRun(
            tenant_id=tenant_id,
            modality=request["modality"],
            status="queued",
            request=request,
            progress={},
            log="",
            gate={},
        )
        session.add(run)
        session.flush()
        return run.id


def get_run(settings: Settings, run_id: str) -> TrainingRun:
    with session_scope(settings.sqlalchemy_url) as session:
        run = session.get(TrainingRun, run_id)
        if run is None:
            raise NotFound(f"no training run {run_id}")
        session.expunge(run)
        return run


def list_runs(settings: Settings, limit: int = 20) -> list[TrainingRun]:
    with session_scope(settings.sqlalchemy_url) as session:
        rows = list(
            session.scalars(
                select(TrainingRun).order_by(TrainingRun.created_at.desc()).limit(limit)
            ).all()
        )
        for r in rows:
            session.expunge(r)
        return rows


def run_view(run: TrainingRun) -> dict[str, Any]:
    def iso(t: Any) -> str | None:
        return t.isoformat() if t is not None else None

    return {
        "id": run.id,
        "modality": run.modality,
        "status": run.status,
        "request": run.request,
        "progress": run.progress,
        "log": run.log.splitlines(),
        "run_dir": run.run_dir,
        "candidate_version": f"v{run.candidate_version}" if run.candidate_version else None,
        "gate": run.gate,
        "error": run.error,
        "created_at": iso(run.created_at),
        "started_at": iso(run.started_at),
        "finished_at": iso(run.finished_at),
    }


class _Reporter:
    """Progress into the run's row (throttled) and a log line per new stage."""

    def __init__(self, settings: Settings, run_id: str) -> None:
        self.settings = settings
        self.run_id = run_id
        self.stage: str | None = None
        self.last = 0.0
        self.lock = threading.Lock()

    def log(self, line: str) -> None:
        stamp = utcnow().isoformat(timespec="seconds")
        with session_scope(self.settings.sqlalchemy_url) as session:
            run = session.get(TrainingRun, self.run_id)
            assert run is not None
            run.log = (run.log or "") + f"{stamp} {line}\n"

    def __call__(self, stage: str, done: int, total: int, metrics: dict[str, float]) -> None:
        with self.lock:
            now = time.monotonic()
            new_stage = stage != self.stage
            if not new_stage and now - self.last < PROGRESS_EVERY_S and done < total:
                return
            self.stage, self.last = stage, now
        if new_stage:
            self.log(f"stage {stage}")
        progress = {
            "stage": stage,
            "done": done,
            "total": total,
            "metrics": {k: round(float(v), 5) for k, v in metrics.items()},
        }
        with session_scope(self.settings.sqlalchemy_url) as session:
            run = session.get(TrainingRun, self.run_id)
            assert run is not None
            run.progress = progress


def run_training(run_id: str, *, settings: Settings) -> None:
    """Run a queued training run to its end; every outcome is recorded in its row."""
    from generators.corpus.fakes import FakesSpec
    from worker.retrain import retrain

    with session_scope(settings.sqlalchemy_url) as session:
        run = session.get(TrainingRun, run_id)
        if run is None or run.status != "queued":  # gone, or taken by another delivery
            return
        run.status, run.started_at = "running", utcnow()
        request = dict(run.request)
    report = _Reporter(settings, run_id)
    report.log(f"started: {request}")
    out = Path(settings.data_dir) / "runs" / f"api-{run_id}"
    try:
        result = retrain(
            settings,
            modality=request["modality"],
            add_generators=request.get("add_generators", []),
            fakes=[FakesSpec(f["name"], f["path"], f.get("family", "")) for f in request["fakes"]],
            scratch=bool(request.get("scratch", False)),
            preset=request.get("preset", "default"),
            train_overrides=request.get("train_overrides") or None,
            margin=float(request.get("margin", 0.01)),
            out_dir=out,
            promote=False,
            on_progress=report,
        )
    except Exception as exc:
        log.exception("training run %s failed", run_id)
        report.log(f"failed: {type(exc).__name__}: {exc}")
        with session_scope(settings.sqlalchemy_url) as session:
            run = session.get(TrainingRun, run_id)
            assert run is not None
            run.status, run.finished_at, run.run_dir = "failed", utcnow(), str(out)
            user_error = isinstance(exc, ValueError)
            run.error = str(exc) if user_error else "".join(traceback.format_exception(exc))[-4000:]
        return
    version = int(result.candidate_version.lstrip("v"))
    report.log(
        f"done: candidate {result.candidate_version}; gate {result.gate.get('summary')}"
        + ("; promote it with `synthguard models promote`" if result.proposed else "")
    )
    with session_scope(settings.sqlalchemy_url) as session:
        run = session.get(TrainingRun, run_id)
        assert run is not None
        run.status, run.finished_at = "done", utcnow()
        run.run_dir, run.candidate_version, run.gate = str(result.run_dir), version, result.gate
