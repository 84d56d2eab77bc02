"""The service's tables: tenants, API keys, scans (a batch item is a scan with a batch),
batches, and results keyed by (content sha256, model name, model version).

Results are separate from scans so that the same content scanned again, by anyone, with
the same model, is answered from the stored result, and a task that runs twice writes once.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any, ClassVar, cast

from sqlalchemy import (
    JSON,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

SCAN_STATUSES = ("queued", "running", "done", "failed", "canceled")
MODEL_STATUSES = ("candidate", "active", "retired")
BATCH_STATUSES = ("expanding", "running", "done", "canceled", "failed")


def utcnow() -> datetime:
    return datetime.now(UTC)


def new_id() -> str:
    return uuid.uuid4().hex


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every database (SQLite stores them without a zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is not None and value.tzinfo is not None:
            value = value.astimezone(UTC)
        return value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value


class Base(DeclarativeBase):
    type_annotation_map: ClassVar[dict[Any, Any]] = {datetime: UTCDateTime(), dict[str, Any]: JSON}


class Tenant(Base):
    __tablename__ = "tenants"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ApiKey(Base):
    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id"), index=True)
    prefix: Mapped[str] = mapped_column(String(16))  # shown in listings; not a secret
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)  # sha256 of the key
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(default=None)

    tenant: Mapped[Tenant] = relationship()


class Result(Base):
    __tablename__ = "results"
    __table_args__ = (UniqueConstraint("sha256", "model_name", "model_version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    sha256: Mapped[str] = mapped_column(String(64))
    model_name: Mapped[str] = mapped_column(String(100))
    model_version: Mapped[str] = mapped_column(String(100))
    kind: Mapped[str] = mapped_column(String(16))  # image | audio | video
    media: Mapped[dict[str, Any]] = mapped_column(default=dict)  # format, width, height, bytes
    verdict: Mapped[str] = mapped_column(String(16))
    score: Mapped[float] = mapped_column(Float)
    # Where the evidence is: {"crops": [{box, score}], "top_crop": i} or {"segments": [...]}.
    evidence: Mapped[dict[str, Any]] = mapped_column(default=dict)
    decode_ms: Mapped[float] = mapped_column(Float, default=0.0)
    model_ms: Mapped[float] = mapped_column(Float, default=0.0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Batch(Base):
    __tablename__ = "batches"
    __table_args__ = (Index("ix_batches_tenant_created", "tenant_id", "created_at"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id"))
    status: Mapped[str] = mapped_column(String(16), default="expanding")
    source_kind: Mapped[str] = mapped_column(String(16))  # upload | directory | manifest
    source: Mapped[str | None] = mapped_column(Text, default=None)  # the server-side path
    total: Mapped[int] = mapped_column(Integer, default=0)  # items known so far
    expanded: Mapped[bool] = mapped_column(default=False)  # every item has been added
    error_code: Mapped[str | None] = mapped_column(String(32), default=None)
    error_message: Mapped[str | None] = mapped_column(Text, default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    dispatched_at: Mapped[datetime | None] = mapped_column(default=None)  # of the expansion
    finished_at: Mapped[datetime | None] = mapped_column(default=None)


class Scan(Base):
    """One file to score: an upload, or an item of a batch (``batch_id`` and ``position``)."""

    __tablename__ = "scans"
    __table_args__ = (
        Index("ix_scans_tenant_created", "tenant_id", "created_at"),
        Index("ix_scans_batch_status", "batch_id", "status"),
        Index("ix_scans_status_dispatched", "status", "dispatched_at"),
        Index("ix_scans_owner", "owner"),  # a redelivered task finds what it had claimed
        UniqueConstraint("batch_id", "position"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id"))
    batch_id: Mapped[str | None] = mapped_column(ForeignKey("batches.id"), default=None)
    position: Mapped[int | None] = mapped_column(Integer, default=None)
    filename: Mapped[str] = mapped_column(Text)  # the upload's name or the server-side path
    # Uploads are read from the blob store by sha256; server-side items from ``path``.
    path: Mapped[str | None] = mapped_column(Text, default=None)
    sha256: Mapped[str | None] = mapped_column(String(64), default=None)
    queue: Mapped[str] = mapped_column(String(16), default="scan")
    status: Mapped[str] = mapped_column(String(16), default="queued")
    # The task that claimed the scan (a Celery task id, which a redelivery keeps): only it,
    # or anyone once the claim is older than the hard time limit, may claim it again.
    owner: Mapped[str | None] = mapped_column(String(64), default=None)
    result_id: Mapped[int | None] = mapped_column(ForeignKey("results.id"), default=None)
    cached: Mapped[bool] = mapped_column(default=False)  # answered from an earlier result
    error_code: Mapped[str | None] = mapped_column(String(32), default=None)
    error_message: Mapped[str | None] = mapped_column(Text, default=None)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    dispatched_at: Mapped[datetime | None] = mapped_column(default=None)
    started_at: Mapped[datetime | None] = mapped_column(default=None)
    finished_at: Mapped[datetime | None] = mapped_column(default=None)

    result: Mapped[Result | None] = relationship(lazy="joined")


class ModelVersion(Base):
    """A model in the store (``detector.store``): one row per version per modality.

    At most one row per modality is ``active``: the model the API and every worker score
    that modality with. Promotion and rollback change rows in one transaction.
    """

    __tablename__ = "models"
    __table_args__ = (
        UniqueConstraint("modality", "version"),
        Index("ix_models_modality_status", "modality", "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    modality: Mapped[str] = mapped_column(String(16))
    version: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(100))  # the card's name or architecture
    path: Mapped[str] = mapped_column(Text)  # the version folder in the store
    status: Mapped[str] = mapped_column(String(16), default="candidate")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    promoted_at: Mapped[datetime | None] = mapped_column(default=None)
    retired_at: Mapped[datetime | None] = mapped_column(default=None)
    # The last promotion's reason; a forced promotion (past a failed gate) must give one.
    note: Mapped[str | None] = mapped_column(Text, default=None)
    forced: Mapped[bool] = mapped_column(default=False)
    # Scored in shadow next to the active model (results stored, never returned).
    shadow: Mapped[bool] = mapped_column(default=False)
    # The version this one replaced when it was promoted: where a rollback goes back to.
    previous_version: Mapped[int | None] = mapped_column(Integer, default=None)
    # The evaluation gate's table and verdict against the model active when it ran.
    gate: Mapped[dict[str, Any]] = mapped_column(default=dict)


class TrainingRun(Base):
    """A retraining job asked for through the API (``POST /v1/training-runs``): its
    request, where it is, its log, and what it produced (a candidate version, a gate)."""

    __tablename__ = "training_runs"
    __table_args__ = (Index("ix_training_runs_created", "created_at"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id"))
    modality: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16), default="queued")  # queued|running|done|failed
    request: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # {"stage", "done", "total", "metrics"}: the last progress report.
    progress: Mapped[dict[str, Any]] = mapped_column(default=dict)
    log: Mapped[str] = mapped_column(Text, default="")  # a line per stage, with times
    run_dir: Mapped[str | None] = mapped_column(Text, default=None)
    candidate_version: Mapped[int | None] = mapped_column(Integer, default=None)
    gate: Mapped[dict[str, Any]] = mapped_column(default=dict)
    error: Mapped[str | None] = mapped_column(Text, default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(default=None)
    finished_at: Mapped[datetime | None] = mapped_column(default=None)


# The tables themselves, for Core statements on hot paths (no ORM bookkeeping).
SCANS = cast(Table, Scan.__table__)
RESULTS = cast(Table, Result.__table__)


def scan_row(**values: Any) -> dict[str, Any]:
    """A complete ``scans`` row, queued as of now, with ``values`` over the defaults.

    Every column is present, so rows can go in with one Core executemany (no ORM objects
    on the paths every upload and every batch item take).
    """
    now = utcnow()
    row: dict[str, Any] = {
        "id": new_id(), "tenant_id": None, "batch_id": None, "position": None,
        "filename": "", "path": None, "sha256": None, "queue": "scan", "status": "queued",
        "owner": None, "result_id": None, "cached": False, "error_code": None,
        "error_message": None, "attempts": 0, "created_at": now, "dispatched_at": now,
        "started_at": None, "finished_at": None,
    }  # fmt: skip
    unknown = values.keys() - row.keys()
    if unknown:
        raise ValueError(f"not columns of scans: {sorted(unknown)}")
    return row | values
