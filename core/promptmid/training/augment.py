"""Photometric and geometric augmentation for real SAR / optical pairs.

Real SAR reaches users as many renderings of one scene: single- or multi-look speckle, linear amplitude,
dB, 8-bit stretches, upsampled products. A model trained on one rendering learns that rendering; these
draws make it learn the structure instead. Geometry changes (flips, 90-degree turns) are applied to both
images of a pair, so the pair stays co-registered.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np


@dataclass
class PhotometricConfig:
    looks: tuple[float, ...] = (1.0, 2.0, 4.0, 0.0)  # multiplicative gamma speckle; 0 = none
    renderings: tuple[str, ...] = ("as-is", "linear", "db", "8bit")
    gamma_range: tuple[float, float] = (0.7, 1.4)
    contrast_range: tuple[float, float] = (0.7, 1.3)
    blur_prob: float = 0.2
    blur_sigma: tuple[float, float] = (0.5, 1.2)
    upsample_prob: float = 0.15  # 2x nearest/bilinear upsampling of a half-resolution copy


def _stretch(x: np.ndarray, valid: np.ndarray) -> np.ndarray:
    v = x[valid] if valid.any() else x.ravel()
    lo, hi = np.percentile(v, [1, 99]) if v.size else (0.0, 1.0)
    return np.clip((x - lo) / max(hi - lo, 1e-6), 0, 1).astype(np.float32)


def augment_sar(gray: np.ndarray, valid: np.ndarray, rng: np.random.Generator, cfg: PhotometricConfig) -> np.ndarray:
    """One random rendering of a [0, 1] SAR image (treated as amplitude-like): speckle, then a rendering,
    then gamma / contrast, blur, or a 2x upsampled product. Returns [0, 1] float32."""
    x = np.clip(gray.astype(np.float32), 0, 1)
    looks = float(rng.choice(cfg.looks))
    if looks > 0:  # intensity ~ Gamma(L, 1/L) multiplies the intensity, i.e. its square root the amplitude
        x = x * np.sqrt(rng.gamma(looks, 1.0 / looks, x.shape)).astype(np.float32)
    rendering = str(rng.choice(cfg.renderings))
    if rendering == "linear":
        x = _stretch(x * x, valid)  # intensity, linearly stretched: a few bright scatterers dominate
    elif rendering == "db":
        x = _stretch(10 * np.log10(x * x + 1e-4), valid)
    elif rendering == "8bit":
        x = np.round(_stretch(x, valid) * 255) / 255
    return _tone(x[None], valid, rng, cfg)[0]


def augment_optical(color: np.ndarray, valid: np.ndarray, rng: np.random.Generator, cfg: PhotometricConfig) -> np.ndarray:
    """Gamma / contrast / blur / upsampling of a (3, H, W) [0, 1] optical image (all bands alike)."""
    return _tone(color, valid, rng, cfg)


def _tone(x: np.ndarray, valid: np.ndarray, rng: np.random.Generator, cfg: PhotometricConfig) -> np.ndarray:
    """The same gamma, contrast, blur and resampling on every band of (B, H, W)."""
    g = float(np.exp(rng.uniform(np.log(cfg.gamma_range[0]), np.log(cfg.gamma_range[1]))))
    c = float(rng.uniform(*cfg.contrast_range))
    blur = rng.random() < cfg.blur_prob
    sigma = float(rng.uniform(*cfg.blur_sigma))
    up = rng.random() < cfg.upsample_prob
    interp = cv2.INTER_NEAREST if rng.random() < 0.5 else cv2.INTER_LINEAR
    out = []
    for b in x:
        b = np.clip(b, 0, 1) ** g
        m = float(b[valid].mean()) if valid.any() else 0.5
        b = np.clip(m + c * (b - m), 0, 1)
        if blur:
            b = cv2.GaussianBlur(b, (0, 0), sigma)
        if up:
            h, w = b.shape
            small = cv2.resize(b, ((w + 1) // 2, (h + 1) // 2), interpolation=cv2.INTER_AREA)
            b = cv2.resize(small, (w, h), interpolation=interp)
        out.append(b.astype(np.float32))
    return np.stack(out)


def dihedral(x: np.ndarray, k: int) -> np.ndarray:
    """One of the 8 flips / 90-degree turns of the last two axes (k in 0..7), the same for every image of
    a pair."""
    y = np.rot90(x, k % 4, axes=(-2, -1))
    return np.ascontiguousarray(y[..., ::-1] if k >= 4 else y)
