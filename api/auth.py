"""API keys: random tokens shown once, stored as sha256 hashes, each owned by a tenant."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select

from worker.db import ApiKey, Tenant, session_scope, utcnow
from worker.errors import NotFound
from worker.intake import tenant_id_for
from worker.settings import Settings

KEY_PREFIX = "sg_"
LOCAL_TENANT = "local"  # the tenant of unauthenticated requests when keys are not required


def hash_key(key: str) -> str:
    # Keys are 256 random bits: a fast hash is enough (no dictionary to guess from).
    return hashlib.sha256(key.encode()).hexdigest()


@dataclass(frozen=True)
class KeyInfo:
    id: int
    tenant: str
    prefix: str
    created_at: datetime
    revoked_at: datetime | None


def create_key(tenant: str, *, settings: Settings) -> str:
    """Make a key for ``tenant`` (created if new) and return it; only its hash is kept."""
    if not tenant.strip():
        raise ValueError("the tenant name must not be empty")
    tenant_id = tenant_id_for(tenant, settings=settings)
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    with session_scope(settings.sqlalchemy_url) as session:
        session.add(ApiKey(tenant_id=tenant_id, prefix=key[:10], key_hash=hash_key(key)))
    return key


def list_keys(*, settings: Settings) -> list[KeyInfo]:
    with session_scope(settings.sqlalchemy_url) as session:
        rows = session.execute(select(ApiKey, Tenant.name).join(Tenant).order_by(ApiKey.id)).all()
        return [KeyInfo(k.id, name, k.prefix, k.created_at, k.revoked_at) for k, name in rows]


def revoke_key(key_id: int, *, settings: Settings) -> None:
    with session_scope(settings.sqlalchemy_url) as session:
        key = session.get(ApiKey, key_id)
        if key is None:
            raise NotFound(f"no key with id {key_id}")
        if key.revoked_at is None:
            key.revoked_at = utcnow()


def tenant_for_key(key: str, *, settings: Settings) -> int | None:
    """The tenant id of a valid, unrevoked key, or ``None``."""
    with session_scope(settings.sqlalchemy_url) as session:
        return session.scalar(
            select(ApiKey.tenant_id).where(
                ApiKey.key_hash == hash_key(key), ApiKey.revoked_at.is_(None)
            )
        )
