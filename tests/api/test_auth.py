"""API keys and tenants: 401 without a valid key, each tenant sees only its own scans and
batches, revoked keys stop working; and the ``synthguard keys`` commands."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from api.auth import create_key, list_keys, revoke_key, tenant_for_key
from api.cli import app as cli_app
from tests.api._util import assert_error, png, running_app, wait_batch
from worker.db import migrate
from worker.settings import Settings, get_settings


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    settings = Settings(data_dir=tmp_path_factory.mktemp("auth"), require_keys=True)
    migrate(settings.sqlalchemy_url)
    return settings


@pytest.fixture(scope="module")
def keys(settings: Settings) -> dict[str, str]:
    return {
        "alice": create_key("alice", settings=settings),
        "alice2": create_key("alice", settings=settings),  # a second key, same tenant
        "bob": create_key("bob", settings=settings),
        "carol": create_key("carol", settings=settings),
    }


@pytest.fixture(scope="module")
def client(settings: Settings, keys: dict[str, str]) -> Iterator[TestClient]:
    with running_app(settings) as c:
        yield c


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture(scope="module")
def alice_work(client: TestClient, keys: dict[str, str]) -> dict[str, str]:
    """A finished scan and batch of alice's."""
    resp = client.post(
        "/v1/scans?wait=30", files={"file": ("a.png", png(601))}, headers=auth(keys["alice"])
    )
    assert resp.status_code == 200, resp.text
    batch = client.post(
        "/v1/batches",
        files=[("files", ("b1.png", png(602))), ("files", ("b2.png", png(603)))],
        headers=auth(keys["alice"]),
    )
    assert batch.status_code == 202, batch.text
    wait_batch(client, batch.json()["id"], headers=auth(keys["alice"]))
    return {"scan": resp.json()["id"], "batch": batch.json()["id"]}


def test_keys_are_required_when_configured() -> None:
    assert Settings(require_keys=True).keys_required
    assert not Settings(host="127.0.0.1").keys_required  # loopback: open by default
    assert not Settings(host="localhost").keys_required
    assert Settings(host="0.0.0.0").keys_required
    assert not Settings(host="0.0.0.0", require_keys=False).keys_required


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/v1/scans"), ("GET", "/v1/scans/x"), ("GET", "/v1/batches/x"), ("POST", "/v1/scans")],
)
def test_no_key_is_401(client: TestClient, method: str, path: str) -> None:
    resp = client.request(method, path)
    assert "API key is required" in assert_error(resp, 401, "unauthorized")
    assert resp.headers["www-authenticate"] == "Bearer"


def test_an_upload_without_a_key_is_401_and_not_stored(client: TestClient) -> None:
    resp = client.post("/v1/scans?wait=30", files={"file": ("x.png", png(604))})
    assert_error(resp, 401, "unauthorized")
    resp = client.post("/v1/batches", files={"files": ("x.png", png(604))})
    assert_error(resp, 401, "unauthorized")
    resp = client.post("/v1/batches", json={"directory": "x"})
    assert_error(resp, 401, "unauthorized")


def test_a_wrong_key_is_401(client: TestClient, keys: dict[str, str]) -> None:
    for key in ("sg_not-a-real-key", keys["alice"] + "x", keys["alice"][:-1]):
        resp = client.get("/v1/scans", headers=auth(key))
        assert "not valid" in assert_error(resp, 401, "unauthorized")


@pytest.mark.parametrize(
    "header",
    ["Basic YWxpY2U6c2VjcmV0", "Bearer", "Bearer ", "Token KEY", "KEY", "Bearer\tKEY"],
)
def test_a_malformed_authorization_header_is_401(
    client: TestClient, keys: dict[str, str], header: str
) -> None:
    resp = client.get("/v1/scans", headers={"Authorization": header.replace("KEY", keys["bob"])})
    assert_error(resp, 401, "unauthorized")
    assert resp.headers["www-authenticate"] == "Bearer"


def test_the_scheme_is_case_insensitive(client: TestClient, keys: dict[str, str]) -> None:
    resp = client.get("/v1/scans", headers={"Authorization": f"bearer {keys['bob']}"})
    assert resp.status_code == 200, resp.text


def test_a_tenant_sees_only_its_own_work(
    client: TestClient, keys: dict[str, str], alice_work: dict[str, str]
) -> None:
    alice, alice2, bob = auth(keys["alice"]), auth(keys["alice2"]), auth(keys["bob"])
    scan, batch = alice_work["scan"], alice_work["batch"]
    for headers in (alice, alice2):
        assert client.get(f"/v1/scans/{scan}", headers=headers).status_code == 200
        assert client.get(f"/v1/batches/{batch}", headers=headers).status_code == 200
        rows = client.get(f"/v1/batches/{batch}/results", headers=headers).text.splitlines()
        assert len(rows) == 2
    for method, path in [
        ("GET", f"/v1/scans/{scan}"),
        ("GET", f"/v1/batches/{batch}"),
        ("GET", f"/v1/batches/{batch}/results"),
        ("GET", f"/v1/batches/{batch}/results?format=csv"),
        ("POST", f"/v1/batches/{batch}/cancel"),
        ("POST", f"/v1/batches/{batch}/resume"),
    ]:
        assert_error(client.request(method, path, headers=bob), 404, "not_found")
    # Bob's cancel did nothing to alice's batch.
    assert client.get(f"/v1/batches/{batch}", headers=alice).json()["status"] == "done"
    # Bob's own upload of the same bytes is answered from the shared result, as his scan.
    bob_scan = client.post("/v1/scans?wait=30", files={"file": ("b.png", png(601))}, headers=bob)
    assert bob_scan.status_code == 200 and bob_scan.json()["cached"] is True
    bob_ids = [s["id"] for s in client.get("/v1/scans", headers=bob).json()["scans"]]
    alice_ids = [s["id"] for s in client.get("/v1/scans", headers=alice).json()["scans"]]
    assert bob_ids == [bob_scan.json()["id"]]
    assert scan in alice_ids and bob_scan.json()["id"] not in alice_ids
    assert len(alice_ids) == 3  # the scan and the two batch items
    assert_error(client.get(f"/v1/scans/{bob_ids[0]}", headers=alice), 404, "not_found")


def test_a_revoked_key_is_401(client: TestClient, settings: Settings, keys: dict[str, str]) -> None:
    carol = auth(keys["carol"])
    assert client.get("/v1/scans", headers=carol).status_code == 200
    (info,) = [k for k in list_keys(settings=settings) if k.tenant == "carol"]
    assert info.prefix == keys["carol"][:10] and info.revoked_at is None
    revoke_key(info.id, settings=settings)
    assert_error(client.get("/v1/scans", headers=carol), 401, "unauthorized")
    assert tenant_for_key(keys["carol"], settings=settings) is None
    # Other keys are untouched.
    assert client.get("/v1/scans", headers=auth(keys["bob"])).status_code == 200


def test_ops_endpoints_need_no_key(client: TestClient) -> None:
    assert client.get("/healthz").status_code == 200
    assert client.get("/v1/models").status_code == 200


def test_open_mode_uses_the_local_tenant_and_still_honours_keys(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, host="127.0.0.1")
    migrate(settings.sqlalchemy_url)
    key = create_key("dave", settings=settings)
    with running_app(settings) as c:
        local = c.post("/v1/scans?wait=30", files={"file": ("l.png", png(605))})
        assert local.status_code == 200, local.text
        assert c.get(f"/v1/scans/{local.json()['id']}").status_code == 200
        assert_error(c.get(f"/v1/scans/{local.json()['id']}", headers=auth(key)), 404, "not_found")
        assert c.get("/v1/scans", headers=auth(key)).json()["scans"] == []
        assert_error(c.get("/v1/scans", headers=auth("sg_wrong")), 401, "unauthorized")


# ---- the CLI -----------------------------------------------------------------------------

runner = CliRunner()


@pytest.fixture
def cli_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    """``SYNTHGUARD_DATA_DIR`` in a fresh folder, with the cached settings forgotten."""
    for name in ("SYNTHGUARD_REDIS_URL", "SYNTHGUARD_DATABASE_URL", "SYNTHGUARD_STORAGE_DIR"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("SYNTHGUARD_DATA_DIR", str(tmp_path / "cli-data"))
    monkeypatch.setenv("COLUMNS", "200")  # rich tables on one line
    get_settings.cache_clear()
    yield Settings(data_dir=tmp_path / "cli-data")
    get_settings.cache_clear()


def test_cli_keys_create_list_revoke(cli_env: Settings) -> None:
    result = runner.invoke(cli_app, ["keys", "create", "--tenant", "erin"])
    assert result.exit_code == 0, result.output
    key = result.stdout.strip().splitlines()[-1]
    assert key.startswith("sg_") and len(key) > 40
    assert "erin" in result.stderr and "shown once" in result.stderr
    assert cli_env.data_dir.joinpath("synthguard.db").is_file()
    assert tenant_for_key(key, settings=cli_env) is not None

    result = runner.invoke(cli_app, ["keys", "list"])
    assert result.exit_code == 0, result.output
    assert "erin" in result.output and key[:10] in result.output
    assert key not in result.output  # only the prefix is shown
    (info,) = list_keys(settings=cli_env)

    # The key works against an app on the same data folder.
    settings = cli_env.model_copy(update={"require_keys": True})
    with running_app(settings) as c:
        assert c.get("/v1/scans", headers=auth(key)).status_code == 200
        result = runner.invoke(cli_app, ["keys", "revoke", str(info.id)])
        assert result.exit_code == 0, result.output
        assert f"key {info.id} revoked" in result.output
        assert_error(c.get("/v1/scans", headers=auth(key)), 401, "unauthorized")

    result = runner.invoke(cli_app, ["keys", "list"])
    assert result.exit_code == 0
    (info,) = list_keys(settings=cli_env)
    assert info.revoked_at is not None
    assert str(info.revoked_at)[:19] in result.output


def test_cli_keys_errors(cli_env: Settings) -> None:
    result = runner.invoke(cli_app, ["keys", "revoke", "999"])
    assert result.exit_code == 2
    assert "no key with id 999" in result.output
    result = runner.invoke(cli_app, ["keys", "create", "--tenant", "  "])
    assert result.exit_code == 2
    assert "must not be empty" in result.output
    result = runner.invoke(cli_app, ["keys", "create"])
    assert result.exit_code == 2 and "--tenant" in result.output
    assert list_keys(settings=cli_env) == []
