"""Turning raw arrays into PreparedImage: normalisation and phase congruency, computed once per image."""

from __future__ import annotations

import numpy as np

from .config import EngineConfig
from .descriptors.base import PreparedImage
from .io.normalize import normalize_sar, optical_to_gray
from .keypoints.phase_congruency import phase_congruency


def prepare_optical(bands: np.ndarray, valid: np.ndarray, cfg: EngineConfig) -> PreparedImage:
    gray = optical_to_gray(bands, valid, cfg.optical_norm)
    color = None
    if bands.shape[0] >= 3:
        color = np.stack([optical_to_gray(bands[i : i + 1], valid, cfg.optical_norm) for i in range(3)])
    return PreparedImage(gray, valid, "optical", phase_congruency(gray, cfg.pc), color, cfg.land_use)


def prepare_sar(bands: np.ndarray, valid: np.ndarray, dtype: str, cfg: EngineConfig) -> PreparedImage:
    # A multi-band SAR file (e.g. VV+VH) is matched on its first band; polarisations share geometry.
    gray = normalize_sar(bands[0], valid, dtype, cfg.sar_norm)
    return PreparedImage(gray, valid, "sar", phase_congruency(gray, cfg.pc), None, cfg.land_use)
