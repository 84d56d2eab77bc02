"""Persistence: SQLAlchemy tables, sessions, and Alembic migrations."""

from worker.db.migrate import migrate
from worker.db.models import (
    BATCH_STATUSES,
    MODEL_STATUSES,
    RESULTS,
    SCAN_STATUSES,
    SCANS,
    ApiKey,
    Base,
    Batch,
    ModelVersion,
    Result,
    Scan,
    Tenant,
    TrainingRun,
    new_id,
    scan_row,
    utcnow,
)
from worker.db.session import dispose_engines, get_engine, session_factory, session_scope

__all__ = [
    "BATCH_STATUSES",
    "MODEL_STATUSES",
    "RESULTS",
    "SCANS",
    "SCAN_STATUSES",
    "ApiKey",
    "Base",
    "Batch",
    "ModelVersion",
    "Result",
    "Scan",
    "Tenant",
    "TrainingRun",
    "dispose_engines",
    "get_engine",
    "migrate",
    "new_id",
    "scan_row",
    "session_factory",
    "session_scope",
    "utcnow",
]
