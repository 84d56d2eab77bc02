"""Bad uploads and malformed requests: each gets the right status and error code."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import httpx
import pytest
import uvicorn
from fastapi.testclient import TestClient

from api.app import create_app
from tests._media import png_bomb
from tests.api._util import assert_error, jpeg, png, running_app, wait_scan
from worker.settings import Settings

LIMIT = 40_000  # max_upload_bytes of this module's app
SLACK = 64 * 1024  # what the app allows around the file for the multipart framing
BOUNDARY = "sgtestboundary"


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return Settings(
        data_dir=tmp_path_factory.mktemp("bad"),
        max_upload_bytes=LIMIT,
        max_video_upload_bytes=LIMIT,
        max_batch_files=3,
    )


@pytest.fixture(scope="module")
def client(settings: Settings) -> Iterator[TestClient]:
    with running_app(settings) as c:
        yield c


def upload(client: TestClient, name: str, data: bytes, query: str = "?wait=30") -> httpx.Response:
    return client.post(f"/v1/scans{query}", files={"file": (name, data)})


def scan_count(client: TestClient) -> int:
    return len(client.get("/v1/scans?limit=200").json()["scans"])


def test_a_text_file_is_415(client: TestClient) -> None:
    before = scan_count(client)
    resp = upload(client, "notes.png", b"just some text, not an image\n" * 10)
    assert "not a recognised image" in assert_error(resp, 415, "unsupported_media")
    assert scan_count(client) == before  # refused at the door: no scan row


def test_random_bytes_are_415(client: TestClient) -> None:
    assert_error(upload(client, "data.bin", bytes(range(256)) * 8), 415, "unsupported_media")


def test_an_empty_file_is_422_empty(client: TestClient) -> None:
    assert_error(upload(client, "empty.png", b""), 422, "empty")


@pytest.mark.parametrize("fmt", ["png", "jpeg"])
def test_a_truncated_image_fails_its_scan_with_corrupt_media(client: TestClient, fmt: str) -> None:
    good = png(201, (96, 96)) if fmt == "png" else jpeg(201, (96, 96))
    data = good[: len(good) // 2]  # the header parses; the pixel data stops half way
    resp = upload(client, f"cut.{fmt}", data)
    assert resp.status_code == 422, resp.text
    view = resp.json()
    assert view["status"] == "failed"
    assert view["error"]["code"] == "corrupt_media"
    assert "damaged" in view["error"]["message"]
    assert view["verdict"] == "not_applicable" and view["score"] is None
    stored = client.get(f"/v1/scans/{view['id']}")
    assert stored.status_code == 200
    assert stored.json()["status"] == "failed"
    assert stored.json()["error"] == view["error"]
    # Without ?wait= the upload is accepted and fails when it is decoded.
    accepted = upload(client, f"cut-again.{fmt}", data + b"\x00", query="")
    assert accepted.status_code == 202, accepted.text
    later = wait_scan(client, accepted.json()["id"])
    assert later["status"] == "failed" and later["error"]["code"] == "corrupt_media"


def test_a_damaged_header_is_422_corrupt_media_at_once(client: TestClient) -> None:
    data = png(202)[:30] + bytes(range(256))  # PNG signature, then garbage
    assert_error(upload(client, "broken.png", data), 422, "corrupt_media")


def test_a_decompression_bomb_is_413(client: TestClient) -> None:
    msg = assert_error(upload(client, "bomb.png", png_bomb()), 413, "too_large")
    assert "pixels" in msg


def test_an_upload_just_over_max_upload_bytes_is_413(client: TestClient) -> None:
    # Under the request limit (file + multipart slack), over the file limit.
    data = png(203, (64, 64)) + b"\x00" * (LIMIT + 10)
    msg = assert_error(upload(client, "big.png", data), 413, "too_large")
    assert f"{LIMIT:,}" in msg


def test_a_body_over_the_limit_with_content_length_is_413(client: TestClient) -> None:
    data = b"\x89PNG\r\n\x1a\n" + b"\x00" * (LIMIT + SLACK + 1000)
    resp = upload(client, "huge.png", data)
    assert int(resp.request.headers["content-length"]) > LIMIT + SLACK
    msg = assert_error(resp, 413, "too_large")
    assert f"{LIMIT + SLACK:,}" in msg


def _multipart_stream(parts: int, size: int) -> Iterator[bytes]:
    yield (
        f"--{BOUNDARY}\r\n"
        'Content-Disposition: form-data; name="file"; filename="stream.png"\r\n'
        "Content-Type: image/png\r\n\r\n"
    ).encode() + b"\x89PNG\r\n\x1a\n"
    for _ in range(parts):
        yield b"\x00" * size
    yield f"\r\n--{BOUNDARY}--\r\n".encode()


def test_a_chunked_body_over_the_limit_is_413_in_the_test_client(client: TestClient) -> None:
    resp = client.post(
        "/v1/scans",
        content=_multipart_stream(10, 20_000),
        headers={"content-type": f"multipart/form-data; boundary={BOUNDARY}"},
    )
    assert "content-length" not in resp.request.headers
    assert resp.request.headers["transfer-encoding"] == "chunked"
    assert_error(resp, 413, "too_large")


def test_a_chunked_body_over_the_limit_is_cut_off_by_a_real_server(settings: Settings) -> None:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(create_app(settings), log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while not server.started:
            assert time.monotonic() < deadline and thread.is_alive(), "uvicorn did not start"
            time.sleep(0.01)
        total = 100 * 16_384  # 1.6 MB, 19 times the limit
        resp = httpx.post(
            f"http://127.0.0.1:{port}/v1/scans",
            content=_multipart_stream(100, 16_384),
            headers={"content-type": f"multipart/form-data; boundary={BOUNDARY}"},
            timeout=30,
        )
        assert "content-length" not in resp.request.headers
        msg = assert_error(resp, 413, "too_large")
        # The server stopped reading soon after the limit, not at the end of the body.
        so_far = int(msg.split("(")[1].split(" bytes so far")[0].replace(",", ""))
        assert LIMIT + SLACK < so_far < total // 2
        # A small upload through the same server still works.
        ok = httpx.post(
            f"http://127.0.0.1:{port}/v1/scans?wait=30",
            files={"file": ("ok.png", png(204))},
            timeout=30,
        )
        assert ok.status_code == 200, ok.text
    finally:
        server.should_exit = True
        thread.join(timeout=30)
    assert not thread.is_alive()


@pytest.mark.parametrize(
    ("body", "ctype"),
    [
        (b"garbage, not multipart", f"multipart/form-data; boundary={BOUNDARY}"),
        (b"garbage, not multipart", "multipart/form-data"),  # no boundary at all
        (  # a well-formed part under another boundary than the header's
            b'--other\r\nContent-Disposition: form-data; name="file"; filename="a.png"\r\n\r\n'
            b"xx\r\n--other--\r\n",
            f"multipart/form-data; boundary={BOUNDARY}",
        ),
    ],
    ids=["garbage", "no-boundary", "wrong-boundary"],
)
def test_a_malformed_multipart_body_is_422(client: TestClient, body: bytes, ctype: str) -> None:
    resp = client.post("/v1/scans", content=body, headers={"content-type": ctype})
    assert "malformed multipart body" in assert_error(resp, 422, "invalid_request")
    resp = client.post("/v1/batches", content=body, headers={"content-type": ctype})
    assert "malformed multipart body" in assert_error(resp, 422, "invalid_request")


def test_a_missing_file_field_is_422(client: TestClient) -> None:
    resp = client.post("/v1/scans", files={"other": (None, "a plain form field")})
    assert "'file' is missing" in assert_error(resp, 422, "invalid_request")


def test_two_files_in_one_scan_upload_are_422(client: TestClient) -> None:
    resp = client.post(
        "/v1/scans", files=[("file", ("a.png", png(205))), ("file", ("b.png", png(206)))]
    )
    assert "Too many files" in assert_error(resp, 422, "invalid_request")


@pytest.mark.parametrize(
    ("content", "ctype"),
    [(b'{"file": "x"}', "application/json"), (b"x", None), (b"file=x", "text/plain")],
)
def test_a_non_multipart_scan_upload_is_422(
    client: TestClient, content: bytes, ctype: str | None
) -> None:
    headers = {"content-type": ctype} if ctype else {}
    resp = client.post("/v1/scans", content=content, headers=headers)
    assert "multipart/form-data" in assert_error(resp, 422, "invalid_request")


def test_form_urlencoded_upload_is_422(client: TestClient) -> None:
    resp = client.post("/v1/scans", data={"file": "not a file"})
    assert_error(resp, 422, "invalid_request")


def test_malformed_json_batch_is_422(client: TestClient) -> None:
    resp = client.post(
        "/v1/batches", content=b'{"directory": ', headers={"content-type": "application/json"}
    )
    assert "invalid JSON" in assert_error(resp, 422, "invalid_request")


def test_json_batch_with_an_unknown_field_is_422(client: TestClient) -> None:
    resp = client.post("/v1/batches", json={"directory": "x", "recursive": True})
    assert "recursive" in assert_error(resp, 422, "invalid_request")
    resp = client.post("/v1/batches", json={"directory": ["not", "a", "string"]})
    assert "directory" in assert_error(resp, 422, "invalid_request")


def test_json_batch_needs_exactly_one_source(client: TestClient) -> None:
    assert_error(client.post("/v1/batches", json={}), 400, "invalid_request")
    resp = client.post("/v1/batches", json={"directory": "a", "manifest": "b"})
    assert "exactly one" in assert_error(resp, 400, "invalid_request")


def test_server_side_batches_without_roots_are_400(client: TestClient) -> None:
    for body in ({"directory": "/tmp"}, {"manifest": "/etc/hostname"}):
        msg = assert_error(client.post("/v1/batches", json=body), 400, "forbidden_path")
        assert "SYNTHGUARD_BATCH_ROOTS" in msg


def test_an_upload_batch_without_files_is_400(client: TestClient) -> None:
    resp = client.post("/v1/batches", files={"note": (None, "no files here")})
    assert_error(resp, 400, "empty_batch")


def test_an_upload_batch_over_max_batch_files_is_422(client: TestClient) -> None:
    files = [("files", (f"{i}.png", png(210 + i))) for i in range(4)]  # the limit is 3
    assert "Too many files" in assert_error(
        client.post("/v1/batches", files=files), 422, "invalid_request"
    )


def test_unknown_routes_and_methods(client: TestClient) -> None:
    assert_error(client.get("/v1/nothing"), 404, "not_found")
    assert_error(client.delete("/v1/scans"), 405, "method_not_allowed")
