"""Spectrogram front-ends: waveforms to log time-frequency maps, as torch modules.

``create_frontend(name, config)`` builds one of ``stft``, ``lfcc``, ``logmel``, ``cqt``,
``pulse``, or several stacked (``"lfcc+pulse"``); each maps ``(B, T)`` float32 16 kHz
samples to ``(B, 1, out_bins, 1 + T // hop)``.

They run for every 4-second chunk at scan time, inside a budget of 20 ms per chunk for
the whole detector (200x real time on one core). Measured with the default config on
one CPU thread (``torch.set_num_threads(1)``, torch 2.14, best of 7 x 20 runs), per
4 s chunk, alone / in a batch of 16:

========  ========  ============  =============
name      out_bins  batch of 1    batch of 16
========  ========  ============  =============
stft      257       0.73 ms       0.80 ms
lfcc      60        0.90 ms       0.99 ms
logmel    80        0.88 ms       1.35 ms
cqt       190       2.6 ms        2.9 ms
pulse     9         0.99 ms       0.92 ms
========  ========  ============  =============

(The ``tiny`` preset's 95-bin CQT: 1.6 ms.) Of the CQT's time, 0.6 ms goes to its five
half-band decimations, the rest to the per-octave kernel products. (``pulse`` was
timed later, with the other core busy, where ``lfcc`` measured 1.5 ms.)
"""

from detector.frontends.config import FrontendConfig
from detector.frontends.cqt import Cqt, cqt_frequencies
from detector.frontends.lfcc import Lfcc, linear_filterbank
from detector.frontends.logmel import LogMel
from detector.frontends.pulse import PulseCrest
from detector.frontends.registry import (
    FRONTENDS,
    create_frontend,
    frontend_names,
    frontend_parts,
)
from detector.frontends.stack import Stacked
from detector.frontends.stft import LogStft, Spectrogram

__all__ = [
    "FRONTENDS",
    "Cqt",
    "FrontendConfig",
    "Lfcc",
    "LogMel",
    "LogStft",
    "PulseCrest",
    "Spectrogram",
    "Stacked",
    "cqt_frequencies",
    "create_frontend",
    "frontend_names",
    "frontend_parts",
    "linear_filterbank",
]
