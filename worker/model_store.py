"""The model store as the service sees it: versions on disk (``detector.store``) plus one
row each in the database, which says which version of each modality is active.

The API and every worker read the active version from the database (cached for a
second, :func:`worker.runtime.active_models`), so a promotion or a rollback reaches a
running worker between two batches, without a restart; each result records the version
that produced it. With no active version in the store, a modality is scored by the
model its setting names, or the one shipped with the package.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from detector.identity import MODALITIES, model_identity
from detector.store import ModelStore, StoredModel, parse_version
from worker.db import ModelVersion, migrate, session_scope, utcnow
from worker.errors import Conflict, InvalidRequest, NotFound
from worker.settings import Settings


class GateRefused(InvalidRequest):
    """A promotion the evaluation gate does not allow (and that was not forced)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, code="gate_refused")


def store(settings: Settings) -> ModelStore:
    return ModelStore(settings.model_store)


def model_view(row: ModelVersion) -> dict[str, Any]:
    return {
        "modality": row.modality,
        "version": f"v{row.version}",
        "name": row.name,
        "status": row.status,
        "path": row.path,
        "created_at": row.created_at.isoformat() if row.created_at else None,
        "promoted_at": row.promoted_at.isoformat() if row.promoted_at else None,
        "retired_at": row.retired_at.isoformat() if row.retired_at else None,
        "note": row.note,
        "forced": row.forced,
        "shadow": row.shadow,
        "previous_version": f"v{row.previous_version}" if row.previous_version else None,
        "gate": row.gate,
    }


def add_model(
    settings: Settings,
    model_dir: str | Path,
    *,
    report_dir: str | Path | None = None,
    gate: dict[str, Any] | None = None,
    extra: dict[str, Any] | None = None,
) -> ModelVersion:
    """Copy a trained model into the store as the next version, a candidate."""
    migrate(settings.sqlalchemy_url)
    stored = store(settings).add(model_dir, report_dir=report_dir, extra=extra)
    ident = model_identity(stored.path, modality=stored.modality)
    with session_scope(settings.sqlalchemy_url) as session:
        row = ModelVersion(
            modality=stored.modality,
            version=stored.version,
            name=ident.name,
            path=str(stored.path.resolve()),
            status="candidate",
            forced=False,
            shadow=False,
            gate=gate or {},
        )
        session.add(row)
        session.flush()
        session.expunge(row)
    return row


def list_models(settings: Settings, modality: str | None = None) -> list[ModelVersion]:
    migrate(settings.sqlalchemy_url)
    with session_scope(settings.sqlalchemy_url) as session:
        q = select(ModelVersion).order_by(ModelVersion.modality, ModelVersion.version)
        if modality is not None:
            _check_modality(modality)
            q = q.where(ModelVersion.modality == modality)
        rows = list(session.scalars(q).all())
        for r in rows:
            session.expunge(r)
    return rows


def get_model(settings: Settings, modality: str, version: str | int) -> ModelVersion:
    migrate(settings.sqlalchemy_url)
    with session_scope(settings.sqlalchemy_url) as session:
        row = _get(session, modality, version)
        session.expunge(row)
    return row


def stored_model(row: ModelVersion) -> StoredModel:
    return StoredModel(row.modality, row.version, Path(row.path), model_identity(row.path).card)


def _check_modality(modality: str) -> None:
    if modality not in MODALITIES:
        raise NotFound(f"unknown modality {modality!r}; valid: {', '.join(MODALITIES)}")


def _get(session: Session, modality: str, version: str | int) -> ModelVersion:
    _check_modality(modality)
    try:
        n = parse_version(version)
    except ValueError as exc:
        raise NotFound(str(exc)) from None
    row = session.scalar(
        select(ModelVersion).where(ModelVersion.modality == modality, ModelVersion.version == n)
    )
    if row is None:
        raise NotFound(f"no {modality} model v{n} in the store")
    return row


def _active(session: Session, modality: str) -> ModelVersion | None:
    return session.scalar(
        select(ModelVersion).where(
            ModelVersion.modality == modality, ModelVersion.status == "active"
        )
    )


def set_gate(settings: Settings, modality: str, version: str | int, gate: dict[str, Any]) -> None:
    with session_scope(settings.sqlalchemy_url) as session:
        _get(session, modality, version).gate = gate


def promote(
    settings: Settings,
    modality: str,
    version: str | int,
    *,
    force: bool = False,
    reason: str | None = None,
) -> ModelVersion:
    """Make ``version`` the active model of ``modality``; the active one retires.

    Allowed when the version's evaluation gate passed; ``force`` overrides a failed or
    missing gate and must say why (the reason is recorded with the promotion).
    """
    if force and not (reason and reason.strip()):
        raise InvalidRequest("a forced promotion needs a reason (--reason)", code="reason_required")
    migrate(settings.sqlalchemy_url)
    with session_scope(settings.sqlalchemy_url) as session:
        row = _get(session, modality, version)
        if row.status == "active":
            raise Conflict(f"{modality} v{row.version} is already active")
        gate = row.gate or {}
        if not force and not gate.get("passed"):
            why = gate.get("summary") or "no evaluation gate has run for it"
            raise GateRefused(
                f"{modality} v{row.version} did not pass the evaluation gate ({why}); "
                "run `synthguard models gate`, or promote with --force --reason"
            )
        now = utcnow()
        current = _active(session, modality)
        if current is not None:
            current.status, current.retired_at = "retired", now
        session.flush()  # at most one active row at any moment
        row.previous_version = current.version if current is not None else None
        row.status, row.promoted_at, row.retired_at = "active", now, None
        row.shadow = False  # the active model is not its own shadow
        row.forced = force
        row.note = reason
        session.flush()
        session.expunge(row)
    return row


def rollback(
    settings: Settings, modality: str, *, reason: str | None = None
) -> ModelVersion | None:
    """Retire the active version and reactivate the one it replaced (rolling back again
    goes further back). Returns the now-active row, or None when it replaced none (the
    modality then falls back to its configured or shipped model)."""
    migrate(settings.sqlalchemy_url)
    with session_scope(settings.sqlalchemy_url) as session:
        current = _active(session, modality)
        if current is None:
            raise Conflict(f"no {modality} model is active in the store")
        previous = None
        if current.previous_version is not None:
            previous = _get(session, modality, current.previous_version)
        now = utcnow()
        current.status, current.retired_at = "retired", now
        current.note = f"rolled back: {reason}" if reason else "rolled back"
        session.flush()
        if previous is not None:  # it keeps its own previous version: rollbacks walk back
            previous.status, previous.retired_at = "active", None
            session.flush()
        if previous is not None:
            session.expunge(previous)
    return previous


def store_paths(settings: Settings) -> tuple[dict[str, Path], dict[str, Path]]:
    """Modality -> folder of its active version, and of its shadow version (only the
    modalities that have one), in one query."""
    migrate(settings.sqlalchemy_url)
    with session_scope(settings.sqlalchemy_url) as session:
        rows = session.execute(
            select(ModelVersion.modality, ModelVersion.path, ModelVersion.status).where(
                (ModelVersion.status == "active") | ModelVersion.shadow
            )
        ).all()
    active = {m: Path(p) for m, p, status in rows if status == "active"}
    shadow = {m: Path(p) for m, p, status in rows if status != "active"}
    return active, shadow


def set_shadow(settings: Settings, modality: str, version: str | int | None) -> None:
    """Score live scans of ``modality`` with ``version`` in shadow too (None: stop).

    At most one shadow per modality; the active version cannot be one.
    """
    migrate(settings.sqlalchemy_url)
    with session_scope(settings.sqlalchemy_url) as session:
        _check_modality(modality)
        for row in session.scalars(
            select(ModelVersion).where(ModelVersion.modality == modality, ModelVersion.shadow)
        ):
            row.shadow = False
        if version is not None:
            row = _get(session, modality, version)
            if row.status == "active":
                raise Conflict(f"{modality} v{row.version} is active: it cannot be its own shadow")
            row.shadow = True


def shadow_report(settings: Settings, modality: str, version: str | int) -> dict[str, Any]:
    """How often ``version`` disagreed with the active model on the same contents: both
    models' stored results joined by sha256."""
    from sqlalchemy.orm import aliased

    from worker.db import Result
    from worker.runtime import active_models

    row = get_model(settings, modality, version)
    shadow = model_identity(row.path, modality=modality)
    active = active_models(settings).get(modality)
    if active is None:
        raise Conflict(f"no {modality} model is active to compare with")
    a, b = aliased(Result), aliased(Result)
    with session_scope(settings.sqlalchemy_url) as session:
        pairs = session.execute(
            select(a.verdict, b.verdict, a.score, b.score)
            .join(b, a.sha256 == b.sha256)
            .where(
                a.model_name == active.name,
                a.model_version == active.version,
                b.model_name == shadow.name,
                b.model_version == shadow.version,
            )
        ).all()
    pairs_count: dict[str, int] = {}
    for va, vb, _sa, _sb in pairs:
        key = f"{va}->{vb}"
        pairs_count[key] = pairs_count.get(key, 0) + 1
    disagree = sum(1 for va, vb, _sa, _sb in pairs if va != vb)
    flips = sum(
        1 for va, vb, _sa, _sb in pairs if {va, vb} == {"synthetic", "authentic"}
    )  # the verdicts that matter most: one says synthetic, the other authentic
    n = len(pairs)
    return {
        "modality": modality,
        "shadow": {"version": f"v{row.version}", "name": shadow.name},
        "active": {"name": active.name, "version": active.version},
        "compared": n,
        "disagreements": disagree,
        "disagreement_rate": disagree / n if n else None,
        "opposite_verdicts": flips,
        "mean_abs_score_diff": (sum(abs(sa - sb) for _va, _vb, sa, sb in pairs) / n if n else None),
        "verdict_pairs": dict(sorted(pairs_count.items())),
    }
