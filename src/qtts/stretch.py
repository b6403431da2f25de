"""Speaking rate without a change of pitch (``--speed``, the APIs' ``speed``).

Rubber Band (``pyrubberband`` over Debian's ``rubberband-cli``, which install.sh installs) was
chosen over librosa's phase vocoder and audiotsm's WSOLA by measurement on a real speech
recording (espeak-ng, 10 s; docs/expressive.md): all three keep the pitch (within 20 cents),
but librosa's phase vocoder smears harmonics and fricatives (log-spectral distance to the
original 7.9-8.9 dB against Rubber Band's 5.3-7.1) and WSOLA clicks at its splices and misses
the length by up to 0.7%.  Where the ``rubberband`` program is missing (a Mac without
Homebrew's), librosa's phase vocoder is used and ``qtts doctor`` says so.
"""

from __future__ import annotations

import functools
import logging
import shutil

import numpy as np

from qtts.audio import SAMPLE_RATE

log = logging.getLogger(__name__)


@functools.lru_cache(maxsize=1)
def method() -> str:
    """``rubberband`` where its program is installed, else ``librosa``."""
    return "rubberband" if shutil.which("rubberband") else "librosa"


def stretch(samples: np.ndarray, speed: float, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """``samples`` spoken ``speed`` times as fast (0.5: twice as long), same pitch."""
    if abs(speed - 1.0) < 1e-3 or not len(samples):
        return samples
    samples = np.ascontiguousarray(samples, dtype=np.float32)
    if method() == "rubberband":
        import pyrubberband

        out = pyrubberband.time_stretch(samples, sample_rate, speed)
    else:
        import warnings

        import librosa

        with warnings.catch_warnings():  # a chunk shorter than its FFT is padded: fine here
            warnings.simplefilter("ignore", UserWarning)
            out = librosa.effects.time_stretch(samples, rate=speed)
    return np.asarray(out, dtype=np.float32)
