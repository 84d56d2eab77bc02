"""The model store's files: every trained model gets a version, monotonic per modality.

Layout, under one root (the service uses ``<data dir>/models``)::

    ROOT/<modality>/v1/model.safetensors
    ROOT/<modality>/v1/card.json        the training card, plus "version": "v1"
    ROOT/<modality>/v1/report/          the evaluation report, when one was given
    ROOT/video/v1/voice/, face/         a model's sub-models (card + weights), as trained
    ROOT/<modality>/v2/...

A version folder is written whole under a temporary name and then renamed into place,
so a reader never sees half a model, and two processes adding at once get different
numbers (the rename fails for the loser, which takes the next one). Which version is
active is not a file here: the service keeps it in its database, so the API and every
worker agree (``worker.model_store``).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from detector.identity import MODALITIES

_VERSION = re.compile(r"^v(\d+)$")


@dataclass(frozen=True)
class StoredModel:
    modality: str
    version: int
    path: Path
    card: dict[str, Any]

    @property
    def label(self) -> str:
        return f"v{self.version}"

    @property
    def report(self) -> Path | None:
        path = self.path / "report"
        return path if path.is_dir() else None


def parse_version(text: str | int) -> int:
    """``3``, ``"3"`` or ``"v3"`` -> 3."""
    if isinstance(text, int):
        return text
    m = _VERSION.match(text) or re.match(r"^(\d+)$", text)
    if not m:
        raise ValueError(f"not a model version: {text!r} (expected v1, v2, ...)")
    return int(m.group(1))


class ModelStore:
    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def _dir(self, modality: str) -> Path:
        if modality not in MODALITIES:
            raise ValueError(f"unknown modality {modality!r}; valid: {', '.join(MODALITIES)}")
        return self.root / modality

    def versions(self, modality: str) -> list[StoredModel]:
        folder = self._dir(modality)
        if not folder.is_dir():
            return []
        out = []
        for child in folder.iterdir():
            m = _VERSION.match(child.name)
            if m and (child / "card.json").is_file():
                card = json.loads((child / "card.json").read_text())
                out.append(StoredModel(modality, int(m.group(1)), child, card))
        return sorted(out, key=lambda s: s.version)

    def get(self, modality: str, version: str | int) -> StoredModel:
        n = parse_version(version)
        path = self._dir(modality) / f"v{n}"
        if not (path / "card.json").is_file():
            have = ", ".join(s.label for s in self.versions(modality)) or "none"
            raise ValueError(f"no {modality} model v{n} in the store (versions: {have})")
        return StoredModel(modality, n, path, json.loads((path / "card.json").read_text()))

    def add(
        self,
        model_dir: str | Path,
        *,
        report_dir: str | Path | None = None,
        extra: dict[str, Any] | None = None,
    ) -> StoredModel:
        """Copy a trained model folder (and its evaluation report) in as the next version.

        The card's ``modality`` picks the place; ``extra`` is merged into the stored card
        (for example the retraining run that made it).
        """
        src = Path(model_dir)
        card_path = src / "card.json"
        if not card_path.is_file() or not (src / "model.safetensors").is_file():
            raise ValueError(f"{src} is not a model folder (needs card.json and model.safetensors)")
        card: dict[str, Any] = json.loads(card_path.read_text())
        modality = card.get("modality", "image")
        folder = self._dir(modality)
        folder.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".adding-", dir=folder))
        try:
            _copy_model(src, tmp)
            if report_dir is not None:
                shutil.copytree(report_dir, tmp / "report")
            while True:
                n = max((s.version for s in self.versions(modality)), default=0) + 1
                stored = card | (extra or {}) | {"version": f"v{n}"}
                (tmp / "card.json").write_text(json.dumps(stored, indent=2, sort_keys=True) + "\n")
                try:
                    os.rename(tmp, folder / f"v{n}")  # fails when v<n> appeared meanwhile
                except OSError:
                    if (folder / f"v{n}").exists():
                        continue
                    raise
                return StoredModel(modality, n, folder / f"v{n}", stored)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)


def _copy_model(src: Path, dst: Path) -> None:
    """The weights, and every sub-model folder (a video model holds its face and voice
    models) with its card and weights; training state and other files stay behind. The
    top card is written by the caller."""
    shutil.copy2(src / "model.safetensors", dst / "model.safetensors")
    for sub in sorted(src.iterdir()):
        if sub.is_dir() and (sub / "card.json").is_file() and (sub / "model.safetensors").is_file():
            (dst / sub.name).mkdir()
            shutil.copy2(sub / "card.json", dst / sub.name / "card.json")
            _copy_model(sub, dst / sub.name)
