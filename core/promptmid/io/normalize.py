"""Radiometric normalisation: SAR in any unit/type and optical RGB(N) to comparable [0, 1] images."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from ..errors import InputError


@dataclass
class SarNormConfig:
    scale: str = "auto"  # "auto" | "linear" (intensity/amplitude) | "db" | "display" (already an 8-bit rendering)
    low_pct: float = 1.0  # robust stretch percentiles, computed over valid pixels only
    high_pct: float = 99.0
    speckle_filter: int = 0  # median filter size in pixels (0 = off); odd, e.g. 3 or 5


@dataclass
class OpticalNormConfig:
    low_pct: float = 1.0
    high_pct: float = 99.0


def _stretch(img: np.ndarray, valid: np.ndarray, low_pct: float, high_pct: float, what: str) -> np.ndarray:
    vals = img[valid]
    if vals.size == 0:
        raise InputError(f"The {what} raster has no valid pixels in the overlap (all nodata).")
    lo, hi = np.percentile(vals, [low_pct, high_pct])
    if not hi > lo:
        lo, hi = float(vals.min()), float(vals.max())
    if not hi > lo:
        raise InputError(f"The {what} raster is constant ({lo:g}) in the overlap: nothing to match.")
    out = np.clip((img - lo) / (hi - lo), 0.0, 1.0).astype(np.float32)
    out[~valid] = 0.0
    return out


def sar_scale_of(values: np.ndarray, dtype: str) -> str:
    """Guess the SAR radiometric scale from valid pixel values and the file's data type.

    8-bit files are published renderings (already compressed); negative values mean dB;
    other 16-bit/float data are linear intensity or amplitude, whose heavy tail needs a log.
    """
    if dtype == "Byte":
        return "display"
    if values.size and float(np.min(values)) < 0.0:
        return "db"
    return "linear"


def normalize_sar(img: np.ndarray, valid: np.ndarray, dtype: str, cfg: SarNormConfig) -> np.ndarray:
    """(H, W) SAR backscatter in any unit -> float32 [0, 1] with a robust stretch; invalid pixels -> 0."""
    scale = cfg.scale if cfg.scale != "auto" else sar_scale_of(img[valid], dtype)
    work = img.astype(np.float32, copy=True)
    if scale == "linear":
        pos = valid & (work > 0)
        floor = float(np.percentile(work[pos], 0.1)) if pos.any() else 1e-6
        work = 10.0 * np.log10(np.maximum(work, max(floor, 1e-12)))
    elif scale not in ("db", "display"):
        raise InputError(f"Unknown SAR scale '{cfg.scale}' (use auto, linear, db or display).")
    if cfg.speckle_filter and cfg.speckle_filter > 1:
        k = int(cfg.speckle_filter) | 1
        work = cv2.medianBlur(work.astype(np.float32), k) if k <= 5 else cv2.blur(work, (k, k))
    return _stretch(work, valid, cfg.low_pct, cfg.high_pct, "SAR")


def optical_to_gray(bands: np.ndarray, valid: np.ndarray, cfg: OpticalNormConfig) -> np.ndarray:
    """(B, H, W) optical -> float32 gray [0, 1]. 1 band is used as is; 3+ bands use the first three as RGB
    (an RGBN file's NIR is ignored: SAR structure correlates better with visible edges in our data)."""
    if bands.ndim != 3:
        raise InputError("Optical array must be (bands, rows, cols).")
    if bands.shape[0] >= 3:
        gray = 0.299 * bands[0] + 0.587 * bands[1] + 0.114 * bands[2]
    else:
        gray = bands[0]
    return _stretch(gray.astype(np.float32), valid, cfg.low_pct, cfg.high_pct, "optical")
