"""``synthguard retrain``: add a generator, fine-tune the active model (or train from
scratch), evaluate, gate, and propose (or make) the promotion. A thin layer over
``worker.retrain``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markdown import Markdown
from rich.table import Table

from api._options import FakesOpt, parse_sets
from api._progress import console, stage_bars, user_errors


def register(app: typer.Typer) -> None:
    app.command("retrain")(retrain_cmd)


@user_errors
def retrain_cmd(
    add_generator: Annotated[
        list[str],
        typer.Option(help="A registered generator (built-in or plugin) to add; repeatable."),
    ] = [],  # noqa: B006
    fakes: FakesOpt = [],  # noqa: B006
    modality: Annotated[str, typer.Option(help="image, audio or video.")] = "image",
    real: Annotated[
        str | None,
        typer.Option(help="The corpus's real source (default: the one it was built from)."),
    ] = None,
    corpus: Annotated[
        Path | None,
        typer.Option(help="The corpus to extend (default: the active model's first corpus)."),
    ] = None,
    scratch: Annotated[
        bool, typer.Option("--scratch", help="Train from scratch instead of fine-tuning.")
    ] = False,
    preset: Annotated[
        str, typer.Option(help="tiny (seconds) or default: the new generators and training.")
    ] = "default",
    train_set: Annotated[
        list[str], typer.Option("--train-set", help="Training override KEY=VALUE.")
    ] = [],  # noqa: B006
    margin: Annotated[
        float, typer.Option(help="How much AUC an earlier generator may lose.")
    ] = 0.01,
    out: Annotated[
        Path | None,
        typer.Option(help="Run folder (default: SYNTHGUARD_DATA_DIR/runs/retrain-...)."),
    ] = None,
    promote: Annotated[
        bool, typer.Option("--promote", help="Promote the candidate when the gate passes.")
    ] = False,
) -> None:
    """Extend the active model's corpus with new generators, fine-tune the active model on
    every corpus (replay), evaluate, add the candidate to the store and run the gate.
    Exit status 1 when the gate refuses the candidate."""
    from detector.eval.gate import gate_markdown
    from generators.corpus import parse_fakes
    from worker.retrain import retrain
    from worker.settings import Settings

    settings = Settings()
    with stage_bars() as bars:
        result = retrain(
            settings,
            modality=modality,
            add_generators=add_generator,
            fakes=[parse_fakes(f) for f in fakes],
            real=real,
            corpus=corpus,
            scratch=scratch,
            preset=preset,
            train_overrides=parse_sets(train_set, option="--train-set"),
            margin=margin,
            out_dir=out,
            promote=promote,
            on_progress=bars.update,
        )
    table = Table("stage", "seconds")
    for stage, s in result.seconds.items():
        table.add_row(stage, f"{s:.1f}")
    console.print(table)
    added = ", ".join(f"{k} {v}" for k, v in result.added.items()) or "none (already there)"
    console.print(
        f"{result.mode} from {result.active['name']} {result.active['version']}; corpus "
        f"{result.corpus}: items added {added}; run folder {result.run_dir}",
        soft_wrap=True,
    )
    console.print(Markdown(gate_markdown(result.gate)))
    v = result.candidate_version
    if result.promoted:
        console.print(f"[bold green]{modality} {v} is active[/]")
    elif result.proposed:
        console.print(
            f"[bold green]{modality} {v} passed the gate[/]: promote it with "
            f"`synthguard models promote {v} --modality {modality}`"
        )
    else:
        console.print(
            f"[bold red]{modality} {v} was refused by the gate[/] ({result.gate['summary']}); "
            "it stays a candidate in the store"
        )
        raise typer.Exit(1)
