"""CFOG-like channel features of oriented gradients (Ye et al., TGRS 2019), with a SAR-aware gradient.

Each pixel gets the magnitudes of the image gradient projected on ``n_orientations`` directions over
[0, 180) degrees (unsigned: SAR and optical often show the same edge with opposite contrast), smoothed in
space and across neighbouring orientations, then normalised per pixel. Such maps describe *structure*
(where edges are and which way they run) rather than brightness, which is what SAR and optical images
share. For SAR the gradient is taken on the log of the image, where multiplicative speckle becomes
additive and a ratio edge (the speckle-robust edge of SAR) becomes a difference.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import torch

from ..descriptors.base import PreparedImage
from .base import DenseMap


@dataclass
class CfogConfig:
    n_orientations: int = 9
    sigmas: tuple[float, ...] = (1.0,)  # gradient scales (Gaussian pre-smoothing, pixels); one channel set each
    spatial_sigma: float = 2.0  # smoothing of the channel maps in space (pixels)
    sar_log: bool = True  # gradients of log(SAR) (ratio edges; speckle becomes additive)
    eps_fraction: float = 0.1  # per-pixel normalisation floor, as a fraction of the mean gradient energy
    stride: int = 1

    @property
    def channels(self) -> int:
        return self.n_orientations * len(self.sigmas)


class CfogFeaturizer:
    name = "cfog"

    def __init__(self, cfg: CfogConfig | None = None) -> None:
        self.cfg = cfg or CfogConfig()

    def dense_map(self, image: PreparedImage) -> DenseMap:
        key = ("cfog", repr(self.cfg))
        cached = image.cache.get(key)
        if cached is not None:
            return cached
        cfg = self.cfg
        img = image.gray.astype(np.float32)
        if image.modality == "sar" and cfg.sar_log:
            img = np.log(img + 0.05)  # floor: black (no-return) areas must not explode the log
        # Fill nodata with the mean so its border does not become the strongest "edge" in the image.
        if not image.valid.all():
            img = np.where(image.valid, img, float(img[image.valid].mean()) if image.valid.any() else 0.0)
        feats = [_oriented_channels(img, s, cfg) for s in cfg.sigmas]
        f = np.concatenate(feats, axis=0)
        valid = image.valid
        if cfg.stride > 1:
            f, valid = _pool(f, valid, cfg.stride)
        f[:, ~valid] = 0.0
        out = DenseMap(torch.from_numpy(np.ascontiguousarray(f)), torch.from_numpy(np.ascontiguousarray(valid)),
                       cfg.stride, cfg.n_orientations, 180.0)
        image.cache[key] = out
        return out


def _oriented_channels(img: np.ndarray, sigma: float, cfg: CfogConfig) -> np.ndarray:
    sm = cv2.GaussianBlur(img, (0, 0), sigma) if sigma > 0 else img
    gx = cv2.Sobel(sm, cv2.CV_32F, 1, 0, ksize=3) / 8.0
    gy = cv2.Sobel(sm, cv2.CV_32F, 0, 1, ksize=3) / 8.0
    n = cfg.n_orientations
    theta = np.arange(n) * np.pi / n
    ch = np.abs(np.cos(theta)[:, None, None] * gx[None] + np.sin(theta)[:, None, None] * gy[None])
    ch = np.stack([cv2.GaussianBlur(c, (0, 0), cfg.spatial_sigma) for c in ch])
    # [1, 2, 1] across orientation (circular): an edge between two bins lights both, so a small rotation
    # changes the map smoothly.
    ch = 0.25 * np.roll(ch, 1, 0) + 0.5 * ch + 0.25 * np.roll(ch, -1, 0)
    energy = np.sqrt(np.sum(ch * ch, axis=0))
    floor = cfg.eps_fraction * float(energy.mean()) + 1e-12
    return (ch / (energy + floor)[None]).astype(np.float32)


def _pool(f: np.ndarray, valid: np.ndarray, stride: int) -> tuple[np.ndarray, np.ndarray]:
    c, h, w = f.shape
    hh, ww = h // stride, w // stride
    f = f[:, : hh * stride, : ww * stride].reshape(c, hh, stride, ww, stride).mean(axis=(2, 4))
    v = valid[: hh * stride, : ww * stride].reshape(hh, stride, ww, stride).all(axis=(1, 3))
    return f.astype(np.float32), v
