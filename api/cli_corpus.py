"""``synthguard sources``, ``generators`` and ``corpus``: real sources, the built-in
generators, and labeled corpora built from them. A thin layer over ``generators``."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from api._options import FakesOpt, ModalityOpt, PresetOpt, RealOpt, parse_sets
from api._progress import console, stage_bars, user_errors

generators_app = typer.Typer(help="Built-in generators: list, train, sample.", no_args_is_help=True)
corpus_app = typer.Typer(help="Labeled corpora of real and synthetic media.", no_args_is_help=True)
sources_app = typer.Typer(help="Real sources: what a real folder holds.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(generators_app, name="generators")
    app.add_typer(corpus_app, name="corpus")
    app.add_typer(sources_app, name="sources")


def _open_source(spec: str, modality: str = "image", **options: Any) -> Any:
    from generators.sources import open_source

    what = {"audio": "speech", "video": "video"}.get(modality, "images")
    with console.status(f"reading real {what} from {spec} ..."):
        source = open_source(spec, modality=modality, **options)
    skipped = source.skipped_summary()
    note = ", ".join(f"{n} {code}" for code, n in skipped.items()) or "none"
    unit = {"audio": "recordings", "video": "video clips"}.get(modality, "images")
    console.print(f"real source [bold]{spec}[/]: {len(source)} {unit}; skipped: {note}")
    return source


@sources_app.command("check")
@user_errors
def sources_check(real: RealOpt = "starter", modality: ModalityOpt = "image") -> None:
    """List the usable media of a real source and every skipped file with its reason."""
    source = _open_source(real, modality)
    table = Table("skipped file", "code", "reason")
    for s in source.skipped:
        table.add_row(s.path, s.code, s.message)
    if source.skipped:
        console.print(table)


@generators_app.command("list")
@user_errors
def generators_list(
    corpus: Annotated[
        list[Path],
        typer.Option(help="Also list the --fakes folders this corpus was built with; repeatable."),
    ] = [],  # noqa: B006
) -> None:
    """Every generator: built-in, from plugins (entry points 'synthguard.generators'), and
    the fakes folders recorded in the given corpora."""
    from detector.config import to_dict
    from generators.corpus import recorded_fakes
    from generators.plugins import failures
    from generators.registry import create, names, origin

    table = Table()
    table.add_column("name", no_wrap=True)
    for column in ("family", "modality", "needs real input"):
        table.add_column(column)
    table.add_column("origin", overflow="fold")  # a folder's path: folded, never cut
    table.add_column("default config")
    for name in names():
        try:
            gen = create(name)
        except Exception as exc:  # a plugin's builder may be broken: show it, list the rest
            table.add_row(name, "?", "?", "?", origin(name), f"cannot build: {exc}")
            continue
        cfg = to_dict(gen.config)
        short = ", ".join(f"{k}={cfg[k]}" for k in list(cfg)[:6])
        needs = "yes" if gen.conditional else "no"
        table.add_row(name, gen.family, gen.modality, needs, origin(name), short)
    for folder in corpus:
        for rec in recorded_fakes(folder):
            facts = f"{rec['items']} items in {folder}; {rec['files']} files"
            skipped = sum(rec.get("skipped", {}).values())
            facts += f", {skipped} skipped" if skipped else ""
            table.add_row(
                rec["name"], rec["family"], rec["modality"], "no", f"folder:{rec['path']}", facts
            )
    console.print(table)
    broken = failures()
    if broken:
        console.print(f"[bold red]{len(broken)} generator plugin(s) failed to load:[/]")
        for p in broken:
            console.print(
                f"  {p.entry_point} = {p.value} ({p.dist or 'unknown distribution'}): {p.error}",
                soft_wrap=True,
                markup=False,
            )


@generators_app.command("train")
@user_errors
def generators_train(
    name: Annotated[str, typer.Argument(help="A registered generator name.")],
    out: Annotated[Path, typer.Option(help="Checkpoint folder to write.")],
    real: RealOpt = "starter",
    preset: PresetOpt = "default",
    set_: Annotated[list[str], typer.Option("--set", help="Config override KEY=VALUE.")] = [],  # noqa: B006
) -> None:
    """Train a generator on real images and save a safetensors checkpoint."""
    from generators import create, save_generator

    gen = create(name, preset=preset, **parse_sets(set_))
    source = _open_source(real, gen.modality)
    with stage_bars() as bars:
        report = gen.fit(source, on_step=lambda s, t, m: bars.update(f"fit {name}", s, t, m))
    save_generator(gen, out, real_source=real)
    losses = ", ".join(f"{k}={v:.4f}" for k, v in report.final.items())
    console.print(f"trained {name} in {report.seconds:.1f}s ({report.steps} steps; {losses})")
    console.print(f"checkpoint: {out}")


@generators_app.command("sample")
@user_errors
def generators_sample(
    checkpoint: Annotated[Path, typer.Option(help="A checkpoint folder from 'train'.")],
    out: Annotated[Path, typer.Option(help="Folder for the PNG samples.")],
    n: Annotated[int, typer.Option("-n", help="How many samples.")] = 16,
    seed: int = 0,
    real: Annotated[
        str | None,
        typer.Option(
            help="Real source for generators that need one (default: the one it trained on)."
        ),
    ] = None,
) -> None:
    """Sample a trained generator into files (PNG images, FLAC clips, H.264 MP4 videos
    at CRF 18)."""
    from PIL import Image

    from detector.media.audio import encode_audio
    from detector.media.video import encode_video
    from generators import load_generator
    from generators.checkpoint import read_checkpoint_meta

    gen = load_generator(checkpoint)
    source = None
    if gen.conditional:
        source = _open_source(
            real or read_checkpoint_meta(checkpoint).get("real_source", "starter"), gen.modality
        )
    with console.status(f"sampling {n} from {gen.name} ..."):
        samples = gen.generate(n, seed=seed, source=source)
    out.mkdir(parents=True, exist_ok=True)
    if samples.videos is not None:
        for i, video in enumerate(samples.videos):
            data = encode_video(video, crf=18)
            (out / f"{gen.name}-{seed}-{i:05d}.mp4").write_bytes(data)
    elif samples.audio is not None:
        for i, clip in enumerate(samples.audio):
            data = encode_audio(clip, samples.sample_rate, "flac")
            (out / f"{gen.name}-{seed}-{i:05d}.flac").write_bytes(data)
    else:
        for i, img in enumerate(samples.images if samples.images is not None else []):
            Image.fromarray(img).save(out / f"{gen.name}-{seed}-{i:05d}.png")
    console.print(f"wrote {n} samples to {out}")


DEFAULT_CORPUS_GENERATORS = "gan_tconv,ae_bilinear,ddpm"
DEFAULT_GENERATORS = {
    "image": DEFAULT_CORPUS_GENERATORS,
    "audio": "gl_linear,gl_mel,lpc",
    "video": "faceswap,ae_swap,selfblend,voice_swap",
}


@corpus_app.command("build")
@user_errors
def corpus_build(
    out: Annotated[Path, typer.Option(help="Corpus folder (an existing corpus is extended).")],
    generators: Annotated[
        str | None,
        typer.Option(
            help="Comma-separated generator names [default: images gan_tconv,ae_bilinear,"
            "ddpm; audio gl_linear,gl_mel,lpc; video faceswap,ae_swap,selfblend,voice_swap; "
            "none when --fakes is given]."
        ),
    ] = None,
    fakes: FakesOpt = [],  # noqa: B006
    real: RealOpt = "starter",
    modality: ModalityOpt = "image",
    per_generator: Annotated[int, typer.Option(help="Synthetic items per generator.")] = 700,
    n_real: Annotated[
        int | None,
        typer.Option(help="Real items (default: images as many as synthetic, audio all)."),
    ] = None,
    preset: PresetOpt = "default",
    size: Annotated[int, typer.Option(help="Side of every item, in pixels.")] = 64,
    jpeg_fraction: Annotated[float, typer.Option(help="Share of items stored as JPEG.")] = 0.7,
    jpeg_quality: Annotated[str, typer.Option(help="JPEG quality range LOW-HIGH.")] = "70-100",
    splits: Annotated[
        str, typer.Option(help="train,val,test fractions by real photo (video: by real video).")
    ] = "0.7,0.15,0.15",
    max_side: Annotated[
        int, typer.Option(help="Video: longer side of every clip, in pixels.")
    ] = 384,
    clip_seconds: Annotated[
        float, typer.Option(help="Video: real videos are cut into clips this long.")
    ] = 4.0,
    max_clips: Annotated[int, typer.Option(help="Video: at most this many clips per video.")] = 8,
    crf: Annotated[
        str, typer.Option(help="Video: H.264 CRF range LOW-HIGH, drawn per real clip.")
    ] = "18-30",
    seed: int = 0,
) -> None:
    """Train (or reuse) each generator and write a labeled corpus with manifest.jsonl."""
    from generators.corpus import CorpusConfig, EncodingConfig, build_corpus, parse_fakes
    from generators.corpus.encoding import VideoEncodingConfig

    lo, sep, hi = jpeg_quality.partition("-")
    if not sep or not lo.isdigit() or not hi.isdigit():
        raise ValueError(f"--jpeg-quality expects LOW-HIGH, e.g. 70-100, got {jpeg_quality!r}")
    crf_lo, crf_sep, crf_hi = crf.partition("-")
    if not crf_sep or not crf_lo.isdigit() or not crf_hi.isdigit():
        raise ValueError(f"--crf expects LOW-HIGH, e.g. 18-30, got {crf!r}")
    fr = tuple(float(x) for x in splits.split(","))
    fake_specs = tuple(parse_fakes(f) for f in fakes)
    if generators is None:
        generators = "" if fake_specs else DEFAULT_GENERATORS.get(modality, "")
    config = CorpusConfig(
        modality=modality,
        real=real if real == "starter" else str(Path(real).expanduser().resolve()),
        generators=tuple(g.strip() for g in generators.split(",") if g.strip()),
        fakes=fake_specs,
        per_generator=per_generator,
        n_real=n_real,
        preset=preset,
        splits=fr,  # type: ignore[arg-type]
        encoding=EncodingConfig(
            size=size, jpeg_fraction=jpeg_fraction, jpeg_quality=(int(lo), int(hi))
        ),
        video=VideoEncodingConfig(
            max_side=max_side,
            clip_seconds=clip_seconds,
            max_clips=max_clips,
            crf=(int(crf_lo), int(crf_hi)),
        ),
        seed=seed,
    )
    options = {"clip_seconds": clip_seconds, "max_clips": max_clips} if modality == "video" else {}
    source = _open_source(config.real, modality, **options)
    t0 = time.perf_counter()
    with stage_bars() as bars:
        report = build_corpus(config, out, on_progress=bars.update, source=source)
    _print_build(report, time.perf_counter() - t0)


def _print_build(report: Any, seconds: float) -> None:
    table = Table("generator", "fit s", "generate s", "items added")
    for name, n in report.added.items():
        fit = report.fit_seconds.get(name)
        gen = report.generate_seconds.get(name)
        table.add_row(
            name,
            f"{fit:.1f}" if fit is not None else "-",
            f"{gen:.1f}" if gen is not None else "-",
            str(n),
        )
    for name in report.skipped:
        changed = report.fakes.get(name, {}).get("changed")
        note = "already in corpus" + (" (folder changed since)" if changed else "")
        table.add_row(name, "-", "-", note)
    console.print(table)
    _print_fakes(report.fakes)
    counts = "; ".join(
        f"{label}: " + ", ".join(f"{s} {n}" for s, n in sorted(splits.items()))
        for label, splits in report.counts.items()
    )
    console.print(f"items by split - {counts}")
    a = report.audit

    def auc(key: str) -> str:
        return "n/a" if a[key] is None else f"{a[key]:.3f}"

    if "auc_crf" in a:
        facts = (
            f"CRF {auc('auc_crf')}, frame rate {auc('auc_fps')}, size {auc('auc_dimensions')}, "
            f"duration {auc('auc_duration')}, file bytes {auc('auc_file_bytes')}"
        )
    elif "auc_duration" in a:
        facts = (
            f"codec {auc('auc_format')}, bitrate {auc('auc_bitrate')}, "
            f"duration {auc('auc_duration')}, file bytes {auc('auc_file_bytes')}"
        )
    else:
        facts = (
            f"format {auc('auc_format')}, JPEG quality {auc('auc_jpeg_quality')}, "
            f"file bytes {auc('auc_file_bytes')}"
        )
    console.print(f"encoding audit (AUC of one fact alone, 0.5 = no signal): {facts}")
    console.print(f"[bold green]corpus written to {report.out_dir.resolve()}[/] in {seconds:.0f}s")


def _print_fakes(fakes: dict[str, dict[str, Any]]) -> None:
    """What each --fakes folder held, and every file skipped with its reason."""
    from rich.markup import escape

    for name, rec in fakes.items():
        if "skipped_files" not in rec:
            if rec.get("changed"):
                console.print(
                    f"fakes [bold]{name}[/]: the folder changed since it was added; its items "
                    "were kept. Use a new name to add the folder as it is now."
                )
            continue
        skipped = ", ".join(f"{n} {code}" for code, n in rec["skipped"].items()) or "none"
        console.print(
            f"fakes [bold]{name}[/] ({escape(rec['path'])}): {rec['files']} files used, family "
            f"{rec['family']}; skipped: {skipped}",
            soft_wrap=True,
        )
        if rec["skipped_files"]:
            table = Table("skipped file", "code", "reason")
            for path, code, message in rec["skipped_files"]:
                table.add_row(path, code, message)
            console.print(table)


@corpus_app.command("info")
@user_errors
def corpus_info_cmd(corpus: Annotated[Path, typer.Argument(help="A corpus folder.")]) -> None:
    """Counts per generator and split, and the encoding audit, as JSON."""
    from generators.corpus import corpus_info

    console.print_json(json.dumps(corpus_info(corpus)))
