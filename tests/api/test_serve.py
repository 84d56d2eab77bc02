"""The README's main command: `synthguard serve` as a real process, on a free port."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.api._util import png

SYNTHGUARD = Path(sys.executable).parent / "synthguard"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_serve_starts_the_embedded_default_and_scores_an_upload(tmp_path: Path) -> None:
    port = _free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("SYNTHGUARD_")},
        "SYNTHGUARD_PORT": str(port),
        "SYNTHGUARD_TORCH_THREADS": "1",
        "COLUMNS": "200",
    }
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [str(SYNTHGUARD), "serve"], cwd=tmp_path, env=env, stdout=out, stderr=subprocess.STDOUT
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        ready = None
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                ready = httpx.get(base + "/readyz", timeout=2)
                if ready.status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        assert ready is not None and ready.status_code == 200, log.read_text()
        assert ready.json()["checks"] == {"database": "ok", "broker": "embedded", "model": "ok"}
        resp = httpx.post(base + "/v1/scans?wait=30", files={"file": ("p.png", png(7))}, timeout=40)
        assert resp.status_code == 200, resp.text
        assert resp.json()["verdict"] in ("synthetic", "uncertain", "authentic")
        # Everything lives in ./synthguard-data of the working folder.
        assert (tmp_path / "synthguard-data" / "synthguard.db").is_file()
        sha = resp.json()["media"]["sha256"]
        assert (tmp_path / "synthguard-data" / "blobs" / sha[:2] / sha).is_file()
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
    text = log.read_text()
    assert f"http://127.0.0.1:{port}" in text
    assert "curl -F file=@photo.jpg" in text
    assert "open access" in text  # it says that it runs without keys, and why
    assert proc.returncode == 0, text
