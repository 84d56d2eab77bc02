"""Settings come from SYNTHGUARD_* environment variables."""

from __future__ import annotations

from pathlib import Path

import pytest

from worker.settings import Settings


def test_batch_roots_from_the_environment_like_path_or_json(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("SYNTHGUARD_BATCH_ROOTS", f"{tmp_path}/a:{tmp_path}/b")
    assert Settings().batch_roots == [tmp_path / "a", tmp_path / "b"]
    monkeypatch.setenv("SYNTHGUARD_BATCH_ROOTS", f'["{tmp_path}/c"]')
    assert Settings().batch_roots == [tmp_path / "c"]
    monkeypatch.setenv("SYNTHGUARD_BATCH_ROOTS", "")
    assert Settings().batch_roots == []


def test_defaults_and_derived_values(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for var in ("SYNTHGUARD_DATABASE_URL", "SYNTHGUARD_REDIS_URL", "SYNTHGUARD_HOST"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("SYNTHGUARD_DATA_DIR", str(tmp_path))
    s = Settings()
    assert s.embedded and not s.keys_required  # loopback: open, and it says so at start
    assert s.sqlalchemy_url == f"sqlite:///{tmp_path.resolve() / 'synthguard.db'}"
    assert s.blob_dir == tmp_path / "blobs"
    monkeypatch.setenv("SYNTHGUARD_HOST", "0.0.0.0")
    assert Settings().keys_required
    monkeypatch.setenv("SYNTHGUARD_REQUIRE_KEYS", "false")
    assert not Settings().keys_required
    monkeypatch.setenv("SYNTHGUARD_REDIS_URL", "redis://127.0.0.1:6379/0")
    assert not Settings().embedded


def test_a_bad_value_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SYNTHGUARD_MAX_UPLOAD_BYTES", "lots")
    with pytest.raises(ValueError, match="max_upload_bytes"):
        Settings()
