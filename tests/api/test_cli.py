from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from api.cli import app
from tests._media import write_bad_folder

runner = CliRunner()


def test_generators_list_shows_every_family() -> None:
    result = runner.invoke(app, ["generators", "list"])
    assert result.exit_code == 0, result.output
    for name in (
        "gan_tconv",
        "gan_nearest",
        "gan_bilinear",
        "gan_pixelshuffle",
        "ae_tconv",
        "ddpm",
    ):
        assert name in result.output


def test_train_then_sample(tmp_path: Path) -> None:
    ckpt = tmp_path / "ckpt"
    result = runner.invoke(
        app,
        [
            "generators",
            "train",
            "ae_bilinear",
            "--real",
            "starter",
            "--out",
            str(ckpt),
            "--preset",
            "tiny",
            "--set",
            "steps=3",
        ],
    )
    assert result.exit_code == 0, result.output
    meta = json.loads((ckpt / "config.json").read_text())
    assert meta["config"]["steps"] == 3 and meta["real_source"] == "starter"
    result = runner.invoke(
        app,
        [
            "generators",
            "sample",
            "--checkpoint",
            str(ckpt),
            "-n",
            "3",
            "--out",
            str(tmp_path / "s"),
        ],
    )
    assert result.exit_code == 0, result.output
    assert len(list((tmp_path / "s").glob("*.png"))) == 3


def test_unknown_generator_is_a_clear_error(tmp_path: Path) -> None:
    result = runner.invoke(app, ["generators", "train", "nope", "--out", str(tmp_path)])
    assert result.exit_code == 2
    assert "unknown generator 'nope'" in result.output and "gan_tconv" in result.output
    result = runner.invoke(
        app, ["corpus", "build", "--generators", "gan_tconv,nope", "--out", str(tmp_path / "c")]
    )
    assert result.exit_code == 2 and "valid values" in result.output


def test_bad_set_and_bad_quality_range(tmp_path: Path) -> None:
    result = runner.invoke(
        app, ["generators", "train", "gan_tconv", "--out", str(tmp_path), "--set", "bogus=1"]
    )
    assert result.exit_code == 2 and "unknown" in result.output and "bogus" in result.output
    result = runner.invoke(
        app, ["corpus", "build", "--jpeg-quality", "high", "--out", str(tmp_path / "c")]
    )
    assert result.exit_code == 2 and "LOW-HIGH" in result.output


def test_sources_check_lists_skipped_files(tmp_path: Path) -> None:
    write_bad_folder(tmp_path / "real")
    result = runner.invoke(app, ["sources", "check", "--real", str(tmp_path / "real")])
    assert result.exit_code == 0, result.output
    assert "bomb.png" in result.output and "too_large" in result.output


def test_corpus_build_and_info(tmp_path: Path) -> None:
    out = tmp_path / "corpus"
    result = runner.invoke(
        app,
        [
            "corpus",
            "build",
            "--generators",
            "gan_bilinear",
            "--per-generator",
            "10",
            "--preset",
            "tiny",
            "--size",
            "32",
            "--out",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "corpus written to" in result.output
    result = runner.invoke(app, ["corpus", "info", str(out)])
    assert result.exit_code == 0, result.output
    info = json.loads(result.output)
    assert info["per_generator"] == {"gan_bilinear": 10, "real": 10}
