"""A tiny image corpus with two cheap synthetic "families", built in about a second.

Real items are crops of the starter photos; the synthetic families are the same
kind of crops pushed through an up-sampling trace (nearest or bilinear 2x), the
fingerprint the real generators leave. Detector tests use it so that they do not
depend on generator training time.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from generators.corpus.encoding import EncodingConfig, choose_encoding, encode_image
from generators.corpus.manifest import ManifestRow, write_manifest
from generators.corpus.splits import split_items

FAMILIES = {"fam_nearest": Image.Resampling.NEAREST, "fam_bilinear": Image.Resampling.BILINEAR}


def _trace(img: np.ndarray, resample: int) -> np.ndarray:
    h, w = img.shape[:2]
    small = Image.fromarray(img).resize((w // 2, h // 2), Image.Resampling.BOX)
    return np.asarray(small.resize((w, h), resample))


def build_tiny_corpus(
    out: Path, source, *, n_per_class: int = 96, size: int = 32, families=None
) -> Path:
    """``families`` maps a name to a function of the pixels (default: the two resampling
    traces of ``FAMILIES``)."""
    families = families or {
        name: (lambda img, r=resample: _trace(img, r)) for name, resample in FAMILIES.items()
    }
    enc_cfg = EncodingConfig(size=size, jpeg_fraction=0.5, jpeg_quality=(80, 100))
    splits = split_items([it.id for it in source.items], (0.6, 0.2, 0.2), seed=0)
    rows = []
    crops = list(source.crops(2 * n_per_class, size=size, seed=1))
    for i, crop in enumerate(crops):
        if i % 2 == 0:  # alternate, so every photo gives both classes
            label, name, fam, img = "real", None, None, crop.image
        else:
            name = list(families)[(i // 2) % len(families)]
            label, fam, img = "synthetic", name, families[name](crop.image)
        item_id = f"{name or 'real'}-{i:05d}"
        enc = choose_encoding(enc_cfg, corpus_seed=0, item_id=item_id)
        data = encode_image(img, enc)
        rel = f"items/{item_id}{enc.extension}"
        (out / rel).parent.mkdir(parents=True, exist_ok=True)
        (out / rel).write_bytes(data)
        rows.append(
            ManifestRow(
                id=item_id,
                path=rel,
                label=label,
                modality="image",
                split=splits[crop.parent],
                generator_family=fam,
                generator_name=name,
                config_hash=None,
                seed=1,
                index=i,
                source_item=crop.parent,
                format=enc.format,
                width=size,
                height=size,
                encoding=enc.to_dict(),
                bytes=len(data),
                sha256=hashlib.sha256(data).hexdigest(),
            )
        )
    write_manifest(out, rows)
    (out / "corpus.json").write_text(json.dumps({"note": "test corpus"}))
    return out


@pytest.fixture(scope="session")
def tiny_corpus(tmp_path_factory, starter) -> Path:
    return build_tiny_corpus(tmp_path_factory.mktemp("tiny_corpus"), starter)


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory, tiny_corpus) -> Path:
    from detector.train.image import train_image_detector

    out = tmp_path_factory.mktemp("tiny_model")
    # crops aligned to the 2x2 pixel grid: not the preset's, so leave-one-out's repeat of
    # the model's own training shows
    overrides = {"epochs": 3, "augment": {"crop_align": 2}}
    train_image_detector([tiny_corpus], out, preset="tiny", train_overrides=overrides)
    return out


# --- voice --------------------------------------------------------------------------------


def random_phase(y: np.ndarray, seed: int) -> np.ndarray:
    """The clip's STFT magnitude with random phase: the crudest vocoder, a strong trace."""
    import librosa

    spec = np.abs(librosa.stft(y, n_fft=512, hop_length=128))
    phase = np.random.default_rng(seed).uniform(-np.pi, np.pi, spec.shape)
    out = librosa.istft(spec * np.exp(1j * phase), hop_length=128, length=len(y))
    return (out / (np.abs(out).max() + 1e-9) * 0.5).astype(np.float32)


def mulaw(y: np.ndarray, bits: int = 4) -> np.ndarray:
    """Coarse mu-law quantisation (early neural vocoders' 8-bit output, made worse)."""
    mu = 2**bits - 1
    c = np.sign(y) * np.log1p(mu * np.abs(y)) / np.log1p(mu)
    q = np.round((c + 1) / 2 * mu) / mu * 2 - 1
    return (np.sign(q) * ((1 + mu) ** np.abs(q) - 1) / mu).astype(np.float32)


VOICE_FAMILIES = {"fam_phase": random_phase, "fam_mulaw": lambda y, _s: mulaw(y)}


def build_tiny_voice_corpus(
    out: Path, *, n_real: int = 30, seconds: float = 3.0, splice: bool = False
) -> Path:
    """Real speech-like clips and two synthetic families made from them, encoded alike;
    with ``splice``, a third: the clip with its middle second from ``fam_phase``."""
    from detector.media.audio import prepare_speech
    from generators.corpus.encoding import (
        AudioEncodingConfig,
        choose_audio_encoding,
        encode_clip,
    )
    from tests._audio import speech_like

    enc_cfg = AudioEncodingConfig()
    ids = [f"utt{i:03d}" for i in range(n_real)]
    splits = split_items(ids, (0.6, 0.2, 0.2), seed=0)
    rows = []

    def add(item_id, label, fam, clip, parent, segments=None):
        clip = prepare_speech(clip).samples
        enc = choose_audio_encoding(enc_cfg, corpus_seed=0, item_id=item_id)
        data = encode_clip(clip, 16_000, enc)
        rel = f"items/{item_id}{enc.extension}"
        (out / rel).parent.mkdir(parents=True, exist_ok=True)
        (out / rel).write_bytes(data)
        rows.append(
            ManifestRow(
                id=item_id,
                path=rel,
                label=label,
                modality="audio",
                split=splits[parent],
                generator_family=fam,
                generator_name=fam,
                config_hash=None,
                seed=0,
                index=len(rows),
                source_item=parent,
                format=enc.format,
                width=0,
                height=0,
                encoding=enc.to_dict(),
                bytes=len(data),
                sha256=hashlib.sha256(data).hexdigest(),
                duration_s=len(clip) / 16_000,
                sample_rate=16_000,
                segments=segments,
            )
        )

    for i, utt in enumerate(ids):
        y = speech_like(i, seconds)
        add(f"real-{i:04d}", "real", None, y, utt)
        fam = list(VOICE_FAMILIES)[i % 2]
        add(f"{fam}-{i:04d}", "synthetic", fam, VOICE_FAMILIES[fam](y, i), utt)
        if splice:
            part = prepare_speech(y).samples  # trimmed now, so the segment's times hold
            mid = len(part) // 2
            a, b = mid - 8_000, mid + 8_000
            part[a:b] = random_phase(part, i)[a:b] * (np.abs(part[a:b]).max() / 0.5)
            add(f"fam_splice-{i:04d}", "synthetic", "fam_splice", part, utt, [[a / 16e3, b / 16e3]])
    write_manifest(out, rows)
    (out / "corpus.json").write_text(json.dumps({"note": "test voice corpus"}))
    return out


@pytest.fixture(scope="session")
def tiny_voice_corpus(tmp_path_factory) -> Path:
    return build_tiny_voice_corpus(tmp_path_factory.mktemp("tiny_voice_corpus"))


def train_tiny_voice_model(corpus: Path, out: Path, *, epochs: int = 15, **model: object) -> Path:
    """A tiny-preset voice model trained on ``corpus`` (model config overrides as keywords)."""
    from detector.train.trainer import train_detector

    train_detector(
        [corpus],
        out,
        modality="audio",
        preset="tiny",
        model_overrides=model,
        train_overrides={"epochs": epochs, "patience": 15, "lr": 3e-3, "batch_size": 8},
    )
    return out


@pytest.fixture(scope="session")
def tiny_voice_model(tmp_path_factory, tiny_voice_corpus) -> Path:
    return train_tiny_voice_model(tiny_voice_corpus, tmp_path_factory.mktemp("tiny_voice_model"))
