"""Training samples for dense use: a SAR crop, an optical crop in its own rotated / scaled frame, and the
exact map between them, so the losses can warp the SAR map into the optical frame as the search does.

Per sample: a random region of the scene (random crops of the 1024 px scenes), one of the 8 flips / turns
for both images, a random SAR rendering and optical tone (augment.py), then a similarity from the paper's
protocol (rotation, scale) with a random shift between the crop centres.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Optional

import cv2
import numpy as np

from ..descriptors.base import PreparedImage
from ..keypoints.phase_congruency import PCMaps
from .augment import PhotometricConfig, augment_optical, augment_sar, dihedral
from .data import CachedPair

_NO_PC = PCMaps(np.zeros((0, 0), np.float32), np.zeros((0, 0), np.float32), np.zeros((0, 0, 0), np.float32))


@dataclass
class DenseAugmentConfig:
    region: int = 320  # larger scenes: a random region of this side (work px) is cut first
    crop: int = 160  # side of both crops
    max_rotation_deg: float = 12.0  # the search's default range, a margin over the paper's +-10
    scale_range: tuple[float, float] = (0.75, 1.05)
    jitter_px: float = 12.0  # shift between the crop centres (the translation the losses must find)
    points: int = 128  # correspondences for InfoNCE
    photometric: PhotometricConfig = field(default_factory=PhotometricConfig)


@dataclass
class DenseSample:
    sar: PreparedImage
    optical: PreparedImage
    sar_to_optical: np.ndarray  # (3, 3): SAR crop px -> optical crop px (array-index, x = col)
    sar_points: np.ndarray  # (N, 2) SAR crop px
    optical_points: np.ndarray  # (N, 2) the same ground points in the optical crop
    land_use: Optional[str]


def make_dense_sample(pair: CachedPair, rng: np.random.Generator, cfg: DenseAugmentConfig) -> Optional[DenseSample]:
    """One augmented sample, or None when the crops share too little valid ground."""
    sar, opt = pair.sar, pair.optical
    if sar.shape != opt.shape:
        return None  # the pairs are co-registered on one grid; anything else is not a training pair
    h, w = sar.shape
    rs = min(cfg.region, h, w)
    ry, rx = int(rng.integers(0, h - rs + 1)), int(rng.integers(0, w - rs + 1))
    region = (slice(ry, ry + rs), slice(rx, rx + rs))
    k = int(rng.integers(8))
    s_gray, s_valid = dihedral(sar.gray[region], k), dihedral(sar.valid[region], k)
    o_valid = dihedral(opt.valid[region], k)
    o_color = dihedral(opt.color[(slice(None),) + region], k) if opt.color is not None else dihedral(opt.gray[region], k)[None]
    s_gray = augment_sar(s_gray, s_valid, rng, cfg.photometric)
    o_color = augment_optical(o_color, o_valid, rng, cfg.photometric)

    c = min(cfg.crop, rs)
    x0, y0 = int(rng.integers(0, rs - c + 1)), int(rng.integers(0, rs - c + 1))
    sar_crop = PreparedImage(s_gray[y0:y0 + c, x0:x0 + c], s_valid[y0:y0 + c, x0:x0 + c], "sar", _NO_PC, None, sar.land_use)

    angle = math.radians(rng.uniform(-cfg.max_rotation_deg, cfg.max_rotation_deg))
    scale = rng.uniform(*cfg.scale_range)
    rot = scale * np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
    centre = np.array([x0 + (c - 1) / 2, y0 + (c - 1) / 2]) + rng.uniform(-cfg.jitter_px, cfg.jitter_px, 2)
    a = np.eye(3)
    a[:2, :2] = rot
    a[:2, 2] = (c - 1) / 2 - rot @ centre  # region px -> optical crop px

    def warp(x: np.ndarray, interp: int) -> np.ndarray:
        return cv2.warpAffine(np.ascontiguousarray(x), a[:2], (c, c), flags=interp, borderValue=0)

    color = np.stack([warp(b, cv2.INTER_LINEAR) for b in o_color])
    valid = warp(o_valid.astype(np.uint8), cv2.INTER_NEAREST) > 0
    gray = color.mean(0).astype(np.float32)
    optical_crop = PreparedImage(gray, valid, "optical", _NO_PC, color if len(color) == 3 else None, sar.land_use)

    t = a @ np.array([[1.0, 0, x0], [0, 1.0, y0], [0, 0, 1.0]])  # SAR crop px -> optical crop px
    pts = rng.uniform(4, c - 5, (cfg.points * 2, 2))
    q = pts @ t[:2, :2].T + t[:2, 2]
    ok = (q >= 4).all(1) & (q <= c - 5).all(1)
    ok &= sar_crop.valid[pts[:, 1].astype(int), pts[:, 0].astype(int)]
    qi = np.clip(q.round().astype(int), 0, c - 1)
    ok &= valid[qi[:, 1], qi[:, 0]]
    if ok.sum() < 32:
        return None
    pts, q = pts[ok][: cfg.points], q[ok][: cfg.points]
    return DenseSample(sar_crop, optical_crop, t, pts.astype(np.float32), q.astype(np.float32), sar.land_use)
