"""The neural vocoder's networks and losses (``melgan``): a log-mel front-end, the
MelGAN/HiFi-GAN-shaped generator, a multi-scale discriminator, the multi-resolution
STFT loss and the least-squares GAN losses with feature matching. The training loop
and the registered generator are in ``generators.audio.vocoder``."""

from __future__ import annotations

from typing import Any

import librosa
import torch
import torch.nn.functional as F
from torch import nn

from detector.media.audio import SAMPLE_RATE


class LogMel(nn.Module):
    """``(B, T)`` waveform -> ``(B, n_mels, T // hop)`` natural-log mel magnitudes.

    ``T`` a multiple of ``hop``: frame ``k`` is centred on samples ``[k hop, (k+1) hop)``,
    so the vocoder's output lines up with its input sample for sample.
    """

    basis: torch.Tensor
    window: torch.Tensor

    def __init__(self, *, n_fft: int, hop: int, n_mels: int, fmax: float) -> None:
        super().__init__()
        self.n_fft, self.hop = n_fft, hop
        basis = librosa.filters.mel(sr=SAMPLE_RATE, n_fft=n_fft, n_mels=n_mels, fmax=fmax)
        # Fixed, not learnt: left out of checkpoints (persistent=False).
        self.register_buffer("basis", torch.from_numpy(basis), persistent=False)
        self.register_buffer("window", torch.hann_window(n_fft), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pad = (self.n_fft - self.hop) // 2
        x = F.pad(x.unsqueeze(1), (pad, self.n_fft - self.hop - pad), mode="reflect").squeeze(1)
        spec = torch.stft(
            x, self.n_fft, self.hop, window=self.window, center=False, return_complex=True
        )
        return torch.log(torch.clamp(self.basis @ spec.abs(), min=1e-5))


class ResBlock(nn.Module):
    """MelGAN's residual unit: x + conv1x1(lrelu(conv3_dilated(lrelu(x))))."""

    def __init__(self, channels: int, dilation: int) -> None:
        super().__init__()
        self.dilated = nn.Conv1d(channels, channels, 3, dilation=dilation, padding=dilation)
        self.pointwise = nn.Conv1d(channels, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.dilated(F.leaky_relu(x, 0.2))
        return x + self.pointwise(F.leaky_relu(h, 0.2))


def _upsampler(cin: int, cout: int, rate: int, kind: str) -> nn.Module:
    if kind == "tconv":  # kernel 2r, output exactly r times longer
        return nn.ConvTranspose1d(
            cin,
            cout,
            2 * rate,
            stride=rate,
            padding=rate // 2 + rate % 2,
            output_padding=rate % 2,
        )
    return nn.Sequential(
        nn.Upsample(scale_factor=rate, mode="nearest"),
        nn.Conv1d(cin, cout, 2 * rate + 1, padding=rate),
    )


class MelGenerator(nn.Module):
    """``(B, n_mels, F)`` log-mel -> ``(B, F * hop)`` waveform in (-1, 1)."""

    def __init__(
        self,
        *,
        n_mels: int,
        channels: int,
        upsample_rates: tuple[int, ...],
        dilations: tuple[int, ...],
        upsample: str,
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Conv1d(n_mels, channels, 7, padding=3)]
        width = channels
        for rate in upsample_rates:
            layers += [nn.LeakyReLU(0.2), _upsampler(width, width // 2, rate, upsample)]
            width //= 2
            layers += [ResBlock(width, d) for d in dilations]
        layers += [nn.LeakyReLU(0.2), nn.Conv1d(width, 1, 7, padding=3), nn.Tanh()]
        self.net = nn.Sequential(*layers)

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        return self.net(mel).squeeze(1)


class ScaleDiscriminator(nn.Module):
    """MelGAN's per-scale discriminator, slimmed for a CPU: strided convs to logits.

    MelGAN's grouped 41-tap convs, 16x wider, made a step with the discriminator 6x
    slower on 2 CPU threads (1.8 s against 0.3 s); these are plain 21-tap convs, at
    most 4x wider than the first layer.
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        c = channels
        self.layers = nn.ModuleList(
            [
                nn.Conv1d(1, c, 15, padding=7),
                nn.Conv1d(c, 2 * c, 21, stride=4, padding=10),
                nn.Conv1d(2 * c, 4 * c, 21, stride=4, padding=10),
                nn.Conv1d(4 * c, 4 * c, 5, padding=2),
            ]
        )
        self.out = nn.Conv1d(4 * c, 1, 3, padding=1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        features = []
        for layer in self.layers:
            x = F.leaky_relu(layer(x), 0.2)
            features.append(x)
        return self.out(x), features


class MultiScaleDiscriminator(nn.Module):
    """``(B, T)`` -> per scale (logits, features); scale ``k`` sees audio pooled ``2^k``x."""

    def __init__(self, *, channels: int, scales: int) -> None:
        super().__init__()
        self.scales = nn.ModuleList([ScaleDiscriminator(channels) for _ in range(scales)])

    def forward(self, x: torch.Tensor) -> list[tuple[torch.Tensor, list[torch.Tensor]]]:
        x = x.unsqueeze(1)
        outs = []
        for i, disc in enumerate(self.scales):
            if i:
                x = F.avg_pool1d(x, 4, stride=2, padding=1, count_include_pad=False)
            outs.append(disc(x))
        return outs


# --- objective --------------------------------------------------------------------------


def stft_loss(
    fake: torch.Tensor, real: torch.Tensor, resolutions: tuple[tuple[int, int, int], ...]
) -> tuple[torch.Tensor, torch.Tensor]:
    """Multi-resolution STFT loss: mean spectral convergence and log-magnitude L1."""
    sc_total = fake.new_zeros(())
    mag_total = fake.new_zeros(())
    for n_fft, hop, win in resolutions:
        window = torch.hann_window(win, device=fake.device)

        def mag(
            x: torch.Tensor,
            n_fft: int = n_fft,
            hop: int = hop,
            win: int = win,
            window: torch.Tensor = window,
        ) -> torch.Tensor:
            spec = torch.stft(x, n_fft, hop, win, window=window, return_complex=True)
            return spec.abs().clamp_min(1e-7)

        f, r = mag(fake), mag(real)
        sc_total = sc_total + torch.linalg.norm(r - f) / torch.linalg.norm(r).clamp_min(1e-7)
        mag_total = mag_total + F.l1_loss(torch.log(f), torch.log(r))
    n = len(resolutions)
    return sc_total / n, mag_total / n


def discriminator_loss(real: list[Any], fake: list[Any]) -> torch.Tensor:
    """Least squares: real -> 1, fake -> 0, summed over scales."""
    return sum(
        (
            torch.mean((r - 1) ** 2) + torch.mean(f**2)
            for (r, _), (f, _) in zip(real, fake, strict=True)
        ),
        torch.zeros(()),
    )


def adversarial_losses(real: list[Any], fake: list[Any]) -> tuple[torch.Tensor, torch.Tensor]:
    """The generator's least-squares loss (fake -> 1) and feature matching (L1 to the
    real features, averaged over layers), summed over scales."""
    adv = torch.zeros(())
    fm = torch.zeros(())
    for (_, real_feats), (fake_logits, fake_feats) in zip(real, fake, strict=True):
        adv = adv + torch.mean((fake_logits - 1) ** 2)
        fm = fm + sum(
            (F.l1_loss(f, r.detach()) for r, f in zip(real_feats, fake_feats, strict=True)),
            torch.zeros(()),
        ) / len(fake_feats)
    return adv, fm
