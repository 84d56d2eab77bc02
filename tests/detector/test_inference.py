from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from typer.testing import CliRunner

from api.cli import app
from detector.inference import Detector
from tests._media import encode, photo_like, write_bad_folder


def test_scan_of_a_mixed_folder_scores_good_files_and_codes_bad_ones(
    tmp_path: Path, tiny_model
) -> None:
    expected = write_bad_folder(tmp_path)
    det = Detector.load(tiny_model)
    files = sorted(tmp_path.rglob("*"))
    files = [f for f in files if f.is_file()]
    results = {Path(r.source).relative_to(tmp_path).as_posix(): r for r in det.score(files)}
    for rel, code in expected.items():
        res = results[rel]
        if code in (None, "too_small"):  # tiny images are scored too (padded), not rejected
            assert res.error is None and 0.0 <= res.score <= 1.0, rel
            assert res.verdict in ("synthetic", "uncertain", "authentic")
            assert res.sha256 and len(res.sha256) == 64
            assert res.model["version"] == det.version
        else:
            assert res.error["code"] == code and res.score is None, rel


def test_bytes_arrays_and_crops(tiny_model) -> None:
    det = Detector.load(tiny_model)
    big = photo_like(3, (100, 140))
    a, b = det.score([encode(big, "PNG"), big])
    assert a.score == b.score  # lossless bytes and the array are the same pixels
    assert len(a.crops) == 16 and a.crops[a.top_crop]["score"] == max(c["score"] for c in a.crops)
    assert a.media == {
        "kind": "image",
        "format": "png",
        "width": 140,
        "height": 100,
        "bytes": a.media["bytes"],
    }
    bad = det.score(np.zeros((4, 4), np.float32))[0]
    assert bad.error["code"] == "unsupported_media"


def test_scan_cli_jsonl(tmp_path: Path, tiny_model) -> None:
    (tmp_path / "a.png").write_bytes(encode(photo_like(1), "PNG"))
    (tmp_path / "b.jpg").write_bytes(b"")
    result = CliRunner().invoke(
        app,
        [
            "scan",
            str(tmp_path),
            str(tmp_path / "missing.png"),
            "--model",
            str(tiny_model),
            "--jsonl",
        ],
    )
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    by_name = {Path(r["path"]).name: r for r in rows}
    assert by_name["a.png"]["verdict"] and by_name["a.png"]["sha256"]
    assert by_name["b.jpg"]["error"]["code"] == "empty"
    assert by_name["missing.png"]["error"]["code"] == "corrupt_media"
