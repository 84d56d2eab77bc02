"""The evaluation gate: may a candidate model replace the active one?

On the union of the test splits of the given corpora, each generator's items against
all the real items, the candidate passes when

(a) on every *new* generator (one the candidate was trained with and the active model
    was not) its AUC beats the active model's, and
(b) on every other generator its AUC is lower than the active model's by at most
    ``margin`` (default 0.01): it has not forgotten what the active model caught.

The table (old vs new per generator) is kept with the candidate and shown by the CLI
and the API.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from detector.data.corpus import read_items, select
from detector.eval.metrics import binary_metrics
from detector.inference import Detector
from detector.train.tasks import load_media

DEFAULT_MARGIN = 0.01


def _generator_aucs(det: Detector, y: np.ndarray, gens: list[str], media: Sequence[Any]) -> dict:
    probs = det.calibration.probability(det.logits(media))
    out: dict[str, float | None] = {"(all)": binary_metrics(y, probs, threshold=0.5)["auc"]}
    for g in sorted({g for g, label in zip(gens, y, strict=True) if label == 1}):
        m = (y == 0) | np.array([x == g for x in gens])
        out[g] = binary_metrics(y[m], probs[m], threshold=0.5)["auc"]
    return out


def evaluation_gate(
    candidate: str | Path,
    active: str | Path,
    corpora: Sequence[str | Path],
    *,
    margin: float = DEFAULT_MARGIN,
    new_generators: Sequence[str] | None = None,
) -> dict[str, Any]:
    """Score both models on the corpora's test splits and apply the rule above."""
    cand, act = Detector.load(candidate), Detector.load(active)
    if cand.modality != act.modality:
        raise ValueError(f"the candidate judges {cand.modality}, the active model {act.modality}")
    if not corpora:
        raise ValueError("the gate needs at least one corpus with a test split")
    items = select(read_items(corpora, modality=cand.modality), split="test")
    y = np.array([it.label for it in items])
    if len(set(y.tolist())) < 2:
        raise ValueError("the corpora's test splits need real and synthetic items")
    gens = [it.generator for it in items]
    media = load_media(cand.modality, items)
    old = _generator_aucs(act, y, gens, media)
    new = _generator_aucs(cand, y, gens, media)
    if new_generators is None:
        seen_before = set(act.card.get("generators", []))
        new_generators = sorted(set(cand.card.get("generators", [])) - seen_before)
    fresh = set(new_generators)
    table = []
    for g in sorted(k for k in new if k != "(all)"):
        o, n = old.get(g), new[g]
        if g in fresh:
            ok = n is not None and (o is None or n > o)
            rule = "new: must beat the active model"
        else:
            ok = n is not None and o is not None and o - n <= margin
            rule = f"earlier: may drop by at most {margin:g}"
        table.append({"generator": g, "active_auc": o, "candidate_auc": n, "role": rule, "ok": ok})
    failed = [r["generator"] for r in table if not r["ok"]]
    missing = sorted(fresh - {r["generator"] for r in table})
    passed = not failed and not missing
    if passed:
        summary = f"passed on {len(table)} generators"
    else:
        parts = []
        if failed:
            parts.append("fails on " + ", ".join(failed))
        if missing:
            parts.append("no test items of the new " + ", ".join(missing))
        summary = "; ".join(parts)
    return {
        "passed": passed,
        "summary": summary,
        "margin": margin,
        "new_generators": sorted(fresh),
        "candidate": {"name": cand.name, "version": cand.version, "path": str(candidate)},
        "active": {"name": act.name, "version": act.version, "path": str(active)},
        "corpora": [str(Path(c).resolve()) for c in corpora],
        "test_items": {"real": int((y == 0).sum()), "synthetic": int((y == 1).sum())},
        "overall": {"active_auc": old["(all)"], "candidate_auc": new["(all)"]},
        "table": table,
    }


def gate_markdown(gate: dict[str, Any]) -> str:
    def f(v: float | None) -> str:
        return "n/a" if v is None else f"{v:.4f}"

    lines = [
        f"Gate: **{'passed' if gate['passed'] else 'refused'}** ({gate['summary']}); "
        f"candidate {gate['candidate']['version']} vs active {gate['active']['version']}, "
        f"margin {gate['margin']:g}",
        "",
        "| generator | active AUC | candidate AUC | rule | ok |",
        "|---|---|---|---|---|",
    ]
    for r in gate["table"]:
        lines.append(
            f"| {r['generator']} | {f(r['active_auc'])} | {f(r['candidate_auc'])} | "
            f"{r['role']} | {'yes' if r['ok'] else 'NO'} |"
        )
    o = gate["overall"]
    lines.append(f"| (all) | {f(o['active_auc'])} | {f(o['candidate_auc'])} | | |")
    return "\n".join(lines) + "\n"
