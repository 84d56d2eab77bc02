"""A small neural vocoder trained on the real speech (``melgan``).

Log-mel spectrogram in, waveform out: a MelGAN/HiFi-GAN-shaped generator (Kumar et al.,
"MelGAN", 2019, https://arxiv.org/abs/1910.06711; Kong et al., "HiFi-GAN", 2020,
https://arxiv.org/abs/2010.05646): transposed convolutions up to the sample rate, each
followed by a stack of residual dilated convolutions. It is trained with the
multi-resolution STFT loss of Parallel WaveGAN (Yamamoto et al., 2020,
https://arxiv.org/abs/1910.11480: spectral convergence + log-magnitude L1), and for the
last part of training also against a small multi-scale discriminator (least-squares
GAN loss plus feature matching). ``generate`` copy-synthesises real utterances through
mel -> vocoder, the path of every neural TTS and voice-conversion back end.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from detector.config import check_choice, check_preset, from_dict
from detector.media.audio import SAMPLE_RATE
from generators.audio._dsp import CopySynthesis, check_audio_source, finish
from generators.audio.melgan_nets import (
    LogMel,
    MelGenerator,
    MultiScaleDiscriminator,
    adversarial_losses,
    discriminator_loss,
    stft_loss,
)
from generators.base import FitReport, StepFn
from generators.image._tensor import Smoothed
from generators.registry import register

UPSAMPLE_KINDS = ("tconv", "nearest")


@dataclass(frozen=True)
class VocoderConfig:
    # The default preset must train in about 10-15 minutes on 2 CPU cores: widths,
    # segment, batch and steps are sized for that budget first, quality second.
    # Measured with torch.set_num_threads(2) on ../shared/data/real_speech (137 clips,
    # 22 min; one 300-step run, extrapolated): 1.9 s to load the speech, 0.087 s per
    # STFT-loss step, 0.31 s per step with the discriminator, so 4000 + 1000 steps take
    # 1.9 + 348 + 314 s = about 11 minutes (the adversarial steps have been ~10% quicker
    # since D's weights are frozen for G's update). At step 300 the STFT losses were
    # still falling (spectral convergence ~0.95, log-magnitude ~1.7); the quality after
    # 5000 steps has not been measured. generate(): ~100x real time.
    n_fft: int = 1024  # the mel analysis: 64 ms frames every hop samples
    hop: int = 256  # 16 ms; must equal the product of upsample_rates
    n_mels: int = 80
    fmax: float = 8000.0
    upsample_rates: tuple[int, ...] = (8, 8, 4)
    channels: int = 128  # after the input conv; halved by each upsampling
    dilations: tuple[int, ...] = (1, 3, 9)  # one residual block per dilation, per stage
    upsample: str = "tconv"  # "tconv" (MelGAN, HiFi-GAN) or "nearest" + conv
    segment: int = 8192  # samples per training example (0.5 s)
    batch_size: int = 8
    steps: int = 5000
    lr: float = 4e-4
    betas: tuple[float, float] = (0.8, 0.99)  # HiFi-GAN's
    # (n_fft, hop, win) of each STFT the loss compares at: 16-64 ms windows (Parallel
    # WaveGAN's three resolutions, 25-50 ms at 24 kHz, scaled to 16 kHz and powers of 2).
    stft_resolutions: tuple[tuple[int, int, int], ...] = (
        (512, 128, 512),
        (1024, 256, 1024),
        (256, 64, 256),
    )
    # The discriminator joins at this step (>= steps: never), once the STFT loss has
    # made speech it can learn from; then loss = stft + adv_weight * adv + fm_weight * fm.
    adv_start: int = 4000
    adv_weight: float = 1.0
    fm_weight: float = 2.0
    disc_channels: int = 16  # first-layer width of each scale's discriminator
    disc_scales: int = 2  # raw audio, then average-pooled 2x per further scale
    # fit() loads utterances in a seeded order until it has this much speech (an hour
    # of float32 at 16 kHz is 230 MB; training sees ~5.5 h of segments in all).
    max_train_seconds: float = 3600.0
    seed: int = 0  # weight init, segments, utterance choice

    def __post_init__(self) -> None:
        check_choice("upsample", self.upsample, UPSAMPLE_KINDS)
        if not self.upsample_rates or min(self.upsample_rates) < 2:
            raise ValueError(f"upsample_rates must be >= 2 each, got {self.upsample_rates}")
        if math.prod(self.upsample_rates) != self.hop:
            raise ValueError(
                f"the product of upsample_rates {self.upsample_rates} must equal hop {self.hop}"
            )
        if not 2 * self.hop <= self.n_fft:
            raise ValueError(f"n_fft must be at least 2 * hop, got {self.n_fft} and {self.hop}")
        if self.channels >> len(self.upsample_rates) < 1:
            raise ValueError(
                f"channels {self.channels} cannot be halved {len(self.upsample_rates)} times"
            )
        if self.segment % self.hop or self.segment < self.n_fft:
            raise ValueError(f"segment must be a multiple of hop and >= n_fft, got {self.segment}")
        counts = (self.n_mels, self.batch_size, self.steps, self.disc_channels)
        if min(*counts, self.disc_scales) < 1:
            raise ValueError(
                "n_mels, batch_size, steps, disc_channels and disc_scales must be >= 1"
            )
        if self.max_train_seconds <= 0:
            raise ValueError(f"max_train_seconds must be > 0, got {self.max_train_seconds}")
        if not self.dilations or min(self.dilations) < 1:
            raise ValueError(f"dilations must be >= 1 each, got {self.dilations}")
        if not self.stft_resolutions:
            raise ValueError("stft_resolutions must not be empty")
        for n_fft, hop, win in self.stft_resolutions:
            if not 1 <= hop <= win <= n_fft:
                raise ValueError(f"bad STFT resolution (n_fft, hop, win) = {(n_fft, hop, win)}")
        if min(self.lr, self.adv_weight, self.fm_weight) < 0 or self.adv_start < 0:
            raise ValueError("lr, adv_weight, fm_weight and adv_start must be >= 0")
        if not 0 < self.fmax <= SAMPLE_RATE / 2:
            raise ValueError(f"fmax must be in (0, {SAMPLE_RATE // 2}], got {self.fmax}")

    @classmethod
    def preset(cls, name: str, **overrides: Any) -> VocoderConfig:
        """The ``tiny`` or ``default`` preset with field overrides (unknown keys raise)."""
        return from_dict(cls, overrides, base=cls(**_PRESETS[check_preset(name)]))


_PRESETS: dict[str, dict[str, Any]] = {
    "default": {},
    # Seconds on a CPU: for tests, not for listening to.
    "tiny": {
        "n_fft": 256,
        "hop": 64,
        "n_mels": 20,
        "upsample_rates": (4, 4, 4),
        "channels": 16,
        "dilations": (1, 3),
        "segment": 1024,
        "batch_size": 2,
        "steps": 3,
        "stft_resolutions": ((256, 64, 256), (128, 32, 128)),
        "adv_start": 1,
        "disc_channels": 4,
    },
}


# --- the generator ----------------------------------------------------------------------


class SegmentSampler:
    """Random fixed-length segments of a set of utterances (longer ones more often)."""

    def __init__(self, clips: list[np.ndarray], *, segment: int, seed: int) -> None:
        self.clips, self.segment = clips, segment
        lengths = np.array([len(c) for c in clips], dtype=np.float64)
        self.weights = lengths / lengths.sum()
        self.rng = np.random.default_rng(seed)

    def batch(self, size: int) -> torch.Tensor:
        out = np.zeros((size, self.segment), dtype=np.float32)
        for i, k in enumerate(self.rng.choice(len(self.clips), size=size, p=self.weights)):
            clip = self.clips[k]
            if len(clip) >= self.segment:
                start = int(self.rng.integers(0, len(clip) - self.segment + 1))
                out[i] = clip[start : start + self.segment]
            else:
                start = int(self.rng.integers(0, self.segment - len(clip) + 1))
                out[i, start : start + len(clip)] = clip
        return torch.from_numpy(out)


class MelVocoder(CopySynthesis):
    """A mel -> waveform vocoder trained on the real speech; copy-synthesises it."""

    family = "neural_vocoder"

    def __init__(self, name: str, config: VocoderConfig) -> None:
        super().__init__(name, config)
        self.features = LogMel(
            n_fft=config.n_fft, hop=config.hop, n_mels=config.n_mels, fmax=config.fmax
        )
        # Seeded init, without touching the global RNG: the same config builds the same nets.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(config.seed)
            self.nets["vocoder"] = MelGenerator(
                n_mels=config.n_mels,
                channels=config.channels,
                upsample_rates=config.upsample_rates,
                dilations=config.dilations,
                upsample=config.upsample,
            )
            self.nets["discriminator"] = MultiScaleDiscriminator(
                channels=config.disc_channels, scales=config.disc_scales
            )

    def to(self, device: str | torch.device) -> MelVocoder:
        super().to(device)
        self.features.to(device)
        return self

    def fit(self, source: Any, *, on_step: StepFn | None = None) -> FitReport:
        """Train on random ``segment``-sample pieces of the source's utterances."""
        cfg: VocoderConfig = self.config
        start = time.perf_counter()
        check_audio_source(self.name, source)
        if not len(source):
            raise ValueError(f"real source {source.spec!r} has no usable speech")
        device = self.device
        clips: list[np.ndarray] = []
        budget = cfg.max_train_seconds * SAMPLE_RATE
        for utt in source.pick(len(source), seed=cfg.seed):  # each once, seeded order
            clips.append(utt.load())
            budget -= len(clips[-1])
            if budget <= 0:
                break
        sampler = SegmentSampler(clips, segment=cfg.segment, seed=cfg.seed)
        gen, disc = self.nets["vocoder"], self.nets["discriminator"]
        features = self.features.to(device)
        opt_g = torch.optim.Adam(gen.parameters(), lr=cfg.lr, betas=cfg.betas)
        opt_d = torch.optim.Adam(disc.parameters(), lr=cfg.lr, betas=cfg.betas)
        self.nets.train()
        smooth = Smoothed()
        metrics: dict[str, float] = {}
        for step in range(1, cfg.steps + 1):
            real = sampler.batch(cfg.batch_size).to(device)
            with torch.no_grad():
                mel = features(real)
            fake = gen(mel)
            sc, mag = stft_loss(fake, real, cfg.stft_resolutions)
            loss = sc + mag
            values = {"sc": sc.item(), "log_mag": mag.item()}
            if step > cfg.adv_start:
                loss_d = discriminator_loss(disc(real), disc(fake.detach()))
                opt_d.zero_grad(set_to_none=True)
                loss_d.backward()
                opt_d.step()
                disc.requires_grad_(False)  # the generator's step: no gradients for D
                with torch.no_grad():
                    real_out = disc(real)
                adv, fm = adversarial_losses(real_out, disc(fake))
                disc.requires_grad_(True)
                loss = loss + cfg.adv_weight * adv + cfg.fm_weight * fm
                values |= {"loss_d": loss_d.item(), "adv": adv.item(), "fm": fm.item()}
            opt_g.zero_grad(set_to_none=True)
            loss.backward()
            opt_g.step()
            metrics = smooth.update(**values)
            if on_step is not None:
                on_step(step, cfg.steps, metrics)
        self.nets.eval()
        self.fit_report = FitReport(
            steps=cfg.steps,
            seconds=time.perf_counter() - start,
            n_train=len(clips),
            final=metrics,
        )
        return self.fit_report

    def vocode(self, y: np.ndarray) -> np.ndarray:
        """``y`` through mel -> vocoder: ``len(y)`` rounded up to whole hops."""
        cfg: VocoderConfig = self.config
        n = len(y)
        # Whole hops, and at least n_fft samples (the reflect padding needs them).
        frames = max(math.ceil(n / cfg.hop), cfg.n_fft // cfg.hop)
        padded = np.zeros(frames * cfg.hop, dtype=np.float32)
        padded[:n] = y
        net = self.nets["vocoder"].eval()
        with torch.inference_mode():
            x = torch.from_numpy(padded).unsqueeze(0).to(self.device)
            out = net(self.features.to(self.device)(x))
        return out[0].float().cpu().numpy()

    def resynthesize(self, y: np.ndarray, *, seed: int) -> np.ndarray:
        """Deterministic: the vocoder adds no noise, so ``seed`` is unused."""
        return finish(self.vocode(y), y)


@register("melgan", family="neural_vocoder")
def melgan(*, preset: str = "default", **overrides: Any) -> MelVocoder:
    return MelVocoder("melgan", VocoderConfig.preset(preset, **overrides))
