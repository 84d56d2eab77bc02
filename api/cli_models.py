"""``synthguard models``: the model store (versions, the evaluation gate, promotion,
rollback). A thin layer over ``worker.model_store`` and ``detector.eval.gate``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markdown import Markdown
from rich.table import Table

from api._progress import console, user_errors

models_app = typer.Typer(
    help="The model store: list, show, add, gate, promote, rollback.", no_args_is_help=True
)
ModalityOpt = Annotated[str, typer.Option(help="image, audio or video.")]
VersionArg = Annotated[str, typer.Argument(help="A version of the store: v1, v2, ...")]


def register(app: typer.Typer) -> None:
    app.add_typer(models_app, name="models")


def _settings() -> Any:
    from worker.settings import Settings

    return Settings()


@models_app.command("list")
@user_errors
def list_cmd(
    modality: Annotated[str | None, typer.Option(help="Only this modality.")] = None,
) -> None:
    """Every stored version, which one is active per modality, and its gate."""
    from worker.model_store import list_models
    from worker.runtime import active_models

    settings = _settings()
    table = Table("modality", "version", "status", "name", "created", "promoted", "gate", "note")
    for row in list_models(settings, modality):
        gate = row.gate.get("summary", "not run") if row.gate else "not run"
        table.add_row(
            row.modality,
            f"v{row.version}",
            f"[bold green]{row.status}[/]" if row.status == "active" else row.status,
            row.name,
            row.created_at.isoformat(timespec="seconds"),
            row.promoted_at.isoformat(timespec="seconds") if row.promoted_at else "",
            gate,
            (row.note or "") + (" (forced)" if row.forced else ""),
        )
    console.print(table)
    for kind, ident in active_models(settings).items():
        console.print(f"{kind}: scored by {ident.name} {ident.version} ({ident.folder})")


@models_app.command("show")
@user_errors
def show_cmd(version: VersionArg, modality: ModalityOpt = "image") -> None:
    """A version's card summary and its evaluation gate, as JSON and a table."""
    from detector.eval.gate import gate_markdown
    from worker.model_store import get_model, model_view, stored_model

    row = get_model(_settings(), modality, version)
    card = stored_model(row).card
    view = model_view(row) | {
        "generators": card.get("generators", []),
        "families": card.get("families", []),
        "corpora": card.get("corpora", []),
        "test": card.get("metrics", {}).get("test", {}).get("overall", {}),
        "calibration": card.get("calibration", {}),
    }
    console.print_json(json.dumps({k: v for k, v in view.items() if k != "gate"}))
    if row.gate:
        console.print(Markdown(gate_markdown(row.gate)))


@models_app.command("add")
@user_errors
def add_cmd(
    model: Annotated[Path, typer.Argument(help="A trained model folder (card.json + weights).")],
    report: Annotated[Path | None, typer.Option(help="Its evaluation report folder.")] = None,
) -> None:
    """Copy a trained model into the store as the next version (a candidate)."""
    from worker.model_store import add_model

    row = add_model(_settings(), model, report_dir=report)
    console.print(f"[bold green]added {row.modality} v{row.version}[/] ({row.path}), a candidate")


def gate_against_active(
    settings: Any, modality: str, version: str, corpora: list[Path], margin: float
) -> dict[str, Any]:
    """Run the gate of a stored candidate against the model now active, and record it."""
    from detector.eval.gate import evaluation_gate
    from worker.model_store import get_model, set_gate, stored_model
    from worker.runtime import active_models

    row = get_model(settings, modality, version)
    cand = stored_model(row)
    active = active_models(settings).get(modality)
    if active is None:
        raise ValueError(f"no {modality} model is active to compare with: promote with --force")
    if not corpora:  # every corpus either model was trained on, where it still exists
        seen = cand.card.get("corpora", []) + active.card.get("corpora", [])
        corpora = [Path(c) for c in dict.fromkeys(seen) if Path(c).is_dir()]
    if not corpora:
        raise ValueError("no corpus to test on: give --corpus (the cards' corpora are gone)")
    gate = evaluation_gate(cand.path, active.folder, corpora, margin=margin)
    set_gate(settings, modality, version, gate)
    return gate


@models_app.command("gate")
@user_errors
def gate_cmd(
    version: VersionArg,
    modality: ModalityOpt = "image",
    corpus: Annotated[
        list[Path],
        typer.Option(help="Test on these corpora (default: every corpus either model saw)."),
    ] = [],  # noqa: B006
    margin: Annotated[
        float, typer.Option(help="How much AUC an earlier generator may lose.")
    ] = 0.01,
) -> None:
    """Compare a stored candidate with the active model on the corpora's test splits."""
    from detector.eval.gate import gate_markdown

    with console.status("scoring the test splits with both models ..."):
        gate = gate_against_active(_settings(), modality, version, list(corpus), margin)
    console.print(Markdown(gate_markdown(gate)))


@models_app.command("promote")
@user_errors
def promote_cmd(
    version: VersionArg,
    modality: ModalityOpt = "image",
    force: Annotated[
        bool, typer.Option("--force", help="Promote past a failed or missing gate.")
    ] = False,
    reason: Annotated[str | None, typer.Option(help="Why (required with --force).")] = None,
) -> None:
    """Make a version the active model of its modality (the API and workers switch to it
    within a second, without a restart)."""
    from worker.model_store import promote

    row = promote(_settings(), modality, version, force=force, reason=reason)
    console.print(f"[bold green]{row.modality} v{row.version} is active[/]")


@models_app.command("rollback")
@user_errors
def rollback_cmd(
    modality: ModalityOpt = "image",
    reason: Annotated[str | None, typer.Option(help="Why, recorded with the version.")] = None,
) -> None:
    """Retire the active version and reactivate the one before it."""
    from worker.model_store import rollback

    previous = rollback(_settings(), modality, reason=reason)
    if previous is None:
        console.print(f"no earlier {modality} version: the configured or shipped model is used")
    else:
        console.print(f"[bold green]{previous.modality} v{previous.version} is active again[/]")


@models_app.command("shadow")
@user_errors
def shadow_cmd(
    version: Annotated[
        str | None, typer.Argument(help="The version to score in shadow (omit with --off).")
    ] = None,
    modality: ModalityOpt = "image",
    off: Annotated[bool, typer.Option("--off", help="Stop shadow scoring.")] = False,
) -> None:
    """Score live scans with a candidate too, in shadow: its results are stored, never
    returned; `models shadow-report` says how often it disagrees with the active model."""
    from worker.model_store import set_shadow

    if off == (version is not None):
        raise ValueError("give a version, or --off")
    set_shadow(_settings(), modality, None if off else version)
    console.print(f"{modality}: shadow {'off' if off else version}")


@models_app.command("shadow-report")
@user_errors
def shadow_report_cmd(version: VersionArg, modality: ModalityOpt = "image") -> None:
    """How often a shadow version disagreed with the active model, on the same files."""
    from worker.model_store import shadow_report

    console.print_json(json.dumps(shadow_report(_settings(), modality, version)))
