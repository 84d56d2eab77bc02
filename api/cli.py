"""The ``synthguard`` command line: a thin typer layer over the libraries."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from api import cli_corpus, cli_models, cli_retrain, cli_scan, cli_service
from api._options import ModalityOpt, PresetOpt, parse_sets
from api._progress import console, stage_bars, user_errors

app = typer.Typer(
    name="synthguard",
    help="Deepfake and synthetic-media detection: generators, corpora, detectors.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)


@app.command("train")
@user_errors
def train_cmd(
    corpus: Annotated[list[Path], typer.Option(help="Corpus folder; repeat for several.")],
    out: Annotated[
        Path, typer.Option(help="Model folder to write (model.safetensors + card.json).")
    ],
    preset: PresetOpt = "default",
    modality: ModalityOpt = "image",
    set_: Annotated[list[str], typer.Option("--set", help="Model config override KEY=VALUE.")] = [],  # noqa: B006
    train_set: Annotated[
        list[str], typer.Option("--train-set", help="Training override KEY=VALUE.")
    ] = [],  # noqa: B006
    resume: Annotated[bool, typer.Option(help="Continue from the last saved epoch in OUT.")] = True,
    voice_model: Annotated[
        str | None,
        typer.Option(help="Video: the voice model folder (default: the shipped one; 'none')."),
    ] = None,
) -> None:
    """Train an image, voice or video detector on corpora, calibrate it on validation,
    test it. A video detector is a face model (trained on face crops of the videos) plus
    the voice model, combined by a rule calibrated on validation videos."""
    from detector.train.trainer import train_detector
    from detector.train.video import train_video_detector

    with stage_bars() as bars:
        if modality == "video":
            result = train_video_detector(
                corpus,
                out,
                preset=preset,
                model_overrides=parse_sets(set_),
                train_overrides=parse_sets(train_set, option="--train-set"),
                voice_model=voice_model,
                resume=resume,
                on_progress=bars.update,
            )
        else:
            result = train_detector(
                corpus,
                out,
                modality=modality,
                preset=preset,
                model_overrides=parse_sets(set_),
                train_overrides=parse_sets(train_set, option="--train-set"),
                resume=resume,
                on_progress=bars.update,
            )
    card = result.card
    test = card["metrics"]["test"].get("overall", {})
    cal = card["calibration"]
    console.print(
        f"trained in {card['training_seconds']:.0f}s over {len(result.history)} epochs; "
        f"test AUC {test.get('auc')}, EER {test.get('eer')}; threshold "
        f"{cal['threshold']:.4f}, temperature {cal['temperature']:.3f}"
    )
    console.print(f"[bold green]model written to {out}[/]")


@app.command("ensemble")
@user_errors
def ensemble_cmd(
    model: Annotated[list[Path], typer.Option(help="A trained model folder; repeat, two or more.")],
    corpus: Annotated[
        list[Path], typer.Option(help="Corpus whose validation split calibrates; repeatable.")
    ],
    out: Annotated[Path, typer.Option(help="Model folder to write.")],
    weight: Annotated[
        list[float], typer.Option(help="Weight of each model, in order (default: equal).")
    ] = [],  # noqa: B006
) -> None:
    """Combine trained image or voice models into one: their calibrated logits averaged,
    the whole calibrated on validation and tested, each member's metrics beside it."""
    from detector.train.ensemble import build_ensemble

    with stage_bars() as bars:
        result = build_ensemble(model, corpus, out, weights=weight or None, on_progress=bars.update)
    card = result.card
    table = Table("model", "val AUC", "val EER", "test AUC", "test EER")
    rows = [
        (f"{m['path']} ({m['version']})", m["val"], m["test"].get("overall", {}))
        for m in card["members"]
    ]
    rows.append(("ensemble", card["metrics"]["val"], card["metrics"]["test"].get("overall", {})))
    for name, val, test in rows:
        table.add_row(name, *(_fmt(d.get(k)) for d in (val, test) for k in ("auc", "eer")))
    console.print(table)
    console.print(f"[bold green]ensemble written to {out}[/]")


def _fmt(v: float | None) -> str:
    return "n/a" if v is None else f"{v:.4f}"


@app.command("evaluate")
@user_errors
def evaluate_cmd(
    corpus: Annotated[list[Path], typer.Option(help="Corpus folder; repeat for several.")],
    out: Annotated[Path, typer.Option(help="Report folder (metrics.json, plots, summary.md).")],
    model: Annotated[
        Path | None, typer.Option(help="Model folder (default: the shipped model).")
    ] = None,
    modality: Annotated[
        str,
        typer.Option(help="Which shipped model when --model is not given: image, audio, video."),
    ] = "image",
    leave_one_out: Annotated[
        bool, typer.Option(help="Train without each family, test on it.")
    ] = False,
    robustness: Annotated[
        bool,
        typer.Option(
            help="AUC after JPEG, resize, blur, noise (images); codecs, noise, "
            "telephone band (audio); recompression, downscaling (video)."
        ),
    ] = False,
    preset: Annotated[
        str,
        typer.Option(
            help="Preset of the leave-one-out trainings where the model's card records no "
            "training (otherwise they repeat the card's)."
        ),
    ] = "default",
    train_set: Annotated[
        list[str],
        typer.Option(
            "--train-set", help="Leave-one-out training override KEY=VALUE (on the card's)."
        ),
    ] = [],  # noqa: B006
) -> None:
    """Evaluate a detector on the corpora's test split."""
    from detector.eval.evaluate import evaluate

    with stage_bars() as bars:
        evaluate(
            model,
            corpus,
            out,
            leave_one_out=leave_one_out,
            robustness=robustness,
            modality=modality,
            loo_preset=preset,
            loo_overrides=parse_sets(train_set, option="--train-set"),
            on_progress=bars.update,
        )
    console.print((out / "summary.md").read_text())
    console.print(f"[bold green]report written to {out}[/]")


cli_corpus.register(app)  # sources, generators, corpus
cli_scan.register(app)  # scan
cli_service.register(app)  # serve, worker, keys, db
cli_models.register(app)  # models list|show|add|gate|promote|rollback
cli_retrain.register(app)  # retrain --add-generator NAME


if __name__ == "__main__":  # pragma: no cover
    app()
