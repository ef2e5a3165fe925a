"""Training samples from a folder of co-registered pairs: SAR crop, augmented optical crop, and point
correspondences through the known augmentation (rotation +-10 deg, scale 0.8-1, as in the paper)."""

from __future__ import annotations

import hashlib
import math
import os
from dataclasses import dataclass, replace
from typing import Optional

import cv2
import numpy as np

from ..config import EngineConfig
from ..descriptors.base import PreparedImage
from ..errors import InputError
from ..evaluation.protocol import list_pairs, pair_land_use
from ..io.rasters import downsample, raster_info, read_pixels
from ..keypoints.pcfast import detect_pcfast
from ..keypoints.phase_congruency import PCMaps, PhaseCongruencyConfig, phase_congruency
from ..prepare import prepare_optical, prepare_sar
from ..progress import Progress


@dataclass
class AugmentConfig:
    crop: int = 256
    max_rotation_deg: float = 10.0
    scale_range: tuple[float, float] = (0.8, 1.0)
    jitter_px: float = 8.0  # random offset of the optical crop centre
    pc_margin: int = 24  # context around the optical crop when recomputing phase congruency
    points: int = 256  # correspondences per sample
    keypoint_share: float = 0.75  # rest are uniform random points (dense supervision)
    candidates: int = 4  # keypoints are the most co-salient of `candidates` x as many SAR keypoints


@dataclass
class CachedPair:
    pair_id: str
    optical: PreparedImage  # orient_amplitude dropped to save memory
    sar: PreparedImage
    sar_keypoints: np.ndarray


@dataclass
class Sample:
    sar: PreparedImage
    optical: PreparedImage
    sar_points: np.ndarray  # (N, 2) array-index pixels in the SAR crop
    optical_points: np.ndarray  # (N, 2) same points in the optical crop
    land_use: Optional[str]


def split_group(pair_id: str) -> str:
    """Pairs that must stay on one side of the validation split. 3MOS tiles were cut with overlap from one
    mosaic per sensor and scene (``3mos_GF3_rural_01`` and ``_04`` share content, see the data README), so
    a sensor/scene is one group; any other pair is its own."""
    parts = pair_id.split("_")
    return "_".join(parts[:3]) if parts[0] == "3mos" and len(parts) >= 4 else pair_id


def is_validation(pair_id: str, fraction: float) -> bool:
    """Deterministic hold-out by the hash of the pair's group, so validation pairs never change with the
    folder's order and overlapping tiles never straddle the split."""
    h = int(hashlib.sha1(split_group(pair_id).encode()).hexdigest()[:8], 16) / 0xFFFFFFFF
    return h < fraction


def split_pairs(pairs_dir: str, val_fraction: float) -> tuple[list[str], list[str]]:
    ids = list_pairs(pairs_dir)
    val = [p for p in ids if is_validation(p, val_fraction)]
    return [p for p in ids if p not in val], val


def load_pairs(pairs_dir: str, ids: list[str], cfg: EngineConfig, progress: Optional[Progress] = None) -> list[CachedPair]:
    progress = progress or Progress()
    out = []
    for i, pid in enumerate(ids):
        progress.report(i / max(len(ids), 1), f"preparing {pid}")
        d = os.path.join(pairs_dir, pid)
        opt, ov, _ = read_pixels(os.path.join(d, "optical.tif"))
        sar, sv, _ = read_pixels(os.path.join(d, "sar.tif"))
        (opt, ov), _ = downsample(opt, ov, cfg.max_side)
        (sar, sv), _ = downsample(sar, sv, cfg.max_side)
        pair = prepare_pair(pid, opt, ov, sar, sv, raster_info(os.path.join(d, "sar.tif")).dtype, pair_land_use(d), cfg)
        if pair is not None:
            out.append(pair)
    progress.report(1.0, f"{len(out)} pairs ready")
    return out


def prepare_pair(pair_id: str, optical: np.ndarray, optical_valid: np.ndarray, sar: np.ndarray, sar_valid: np.ndarray,
                 sar_dtype: str, land_use: Optional[str], cfg: EngineConfig) -> Optional[CachedPair]:
    """A training pair from work-grid arrays (bands, H, W): prepared images and SAR keypoints; None for a
    pair with nothing to learn from (e.g. a constant tile)."""
    pcfg = replace(cfg, land_use=land_use)
    try:
        po = prepare_optical(optical, optical_valid, pcfg)
        ps = prepare_sar(sar, sar_valid, sar_dtype, pcfg)
    except InputError:
        return None
    kps, _ = detect_pcfast(ps.pc.max_moment, ps.valid, cfg.keypoints)
    # The optical crop's phase congruency is recomputed after each random warp (make_sample); only the
    # SAR keeps its full-image orientation amplitudes (cropped, never rotated).
    po.pc = PCMaps(po.pc.max_moment, po.pc.min_moment, np.zeros((0, 0, 0), np.float32))
    ps.pc = PCMaps(ps.pc.max_moment, ps.pc.min_moment, ps.pc.orient_amplitude.astype(np.float16))
    return CachedPair(pair_id, po, ps, kps)


def _crop_prepared(img: PreparedImage, x0: int, y0: int, size: int) -> PreparedImage:
    sl = (slice(y0, y0 + size), slice(x0, x0 + size))
    amp = img.pc.orient_amplitude
    amp = amp[(slice(None),) + sl].astype(np.float32) if amp.ndim == 3 and amp.shape[0] else amp
    pc = PCMaps(img.pc.max_moment[sl], img.pc.min_moment[sl], amp)
    color = img.color[(slice(None),) + sl] if img.color is not None else None
    return PreparedImage(img.gray[sl], img.valid[sl], img.modality, pc, color, img.land_use)


def _warp_prepared(img: PreparedImage, a: np.ndarray, size: int, margin: int, pc_cfg: PhaseCongruencyConfig) -> PreparedImage:
    """Warp by ``a`` onto a (size + 2 margin)^2 canvas, recompute phase congruency there (as inference sees
    a rotated image), then cut the central size^2 (the margin keeps FFT border effects out)."""
    full = size + 2 * margin
    shifted = a.copy()
    shifted[:, 2] += margin

    def w(x: np.ndarray, interp: int = cv2.INTER_LINEAR) -> np.ndarray:
        return cv2.warpAffine(x, shifted, (full, full), flags=interp, borderValue=0)

    gray = w(img.gray)
    pc = phase_congruency(gray, pc_cfg)
    sl = (slice(margin, margin + size), slice(margin, margin + size))
    valid = (w(img.valid.astype(np.uint8), cv2.INTER_NEAREST) > 0)[sl]
    cut = PCMaps(pc.max_moment[sl], pc.min_moment[sl], pc.orient_amplitude[(slice(None),) + sl])
    color = np.stack([w(c)[sl] for c in img.color]) if img.color is not None else None
    return PreparedImage(gray[sl], valid, img.modality, cut, color, img.land_use)


def make_sample(pair: CachedPair, rng: np.random.Generator, cfg: AugmentConfig,
                pc_cfg: Optional[PhaseCongruencyConfig] = None) -> Optional[Sample]:
    """One augmented training sample, or None when the crop has too few valid correspondences."""
    h, w = pair.sar.shape
    c = min(cfg.crop, h, w)
    x0, y0 = int(rng.integers(0, w - c + 1)), int(rng.integers(0, h - c + 1))
    sar = _crop_prepared(pair.sar, x0, y0, c)
    angle = math.radians(rng.uniform(-cfg.max_rotation_deg, cfg.max_rotation_deg))
    scale = rng.uniform(*cfg.scale_range)
    centre = np.array([x0 + (c - 1) / 2, y0 + (c - 1) / 2]) + rng.uniform(-cfg.jitter_px, cfg.jitter_px, 2)
    rot = scale * np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
    a = np.zeros((2, 3))
    a[:, :2] = rot
    a[:, 2] = np.array([(c - 1) / 2, (c - 1) / 2]) - rot @ centre  # global optical pixel -> optical crop pixel
    optical = _warp_prepared(pair.optical, a, c, cfg.pc_margin, pc_cfg or PhaseCongruencyConfig(backend="torch"))
    kp = pair.sar_keypoints
    inside = (kp[:, 0] >= x0) & (kp[:, 0] < x0 + c) & (kp[:, 1] >= y0) & (kp[:, 1] < y0 + c)
    kp = kp[inside] - [x0, y0]
    n_kp = min(len(kp), int(cfg.points * cfg.keypoint_share))
    if n_kp:
        # Favour points whose structure shows in both modalities (phase congruency high in the SAR and at
        # the mapped optical position): speckle corners and flat areas make InfoNCE targets unlearnable.
        cand = kp[rng.choice(len(kp), min(len(kp), n_kp * cfg.candidates), replace=False)]
        q = (cand + [x0, y0]) @ rot.T + a[:, 2]
        qi = np.clip(q.round().astype(int), 0, c - 1)
        saliency = sar.pc.max_moment[cand[:, 1].astype(int), cand[:, 0].astype(int)] * optical.pc.max_moment[qi[:, 1], qi[:, 0]]
        pts = cand[np.argsort(-saliency)[:n_kp]]
    else:
        pts = np.zeros((0, 2))
    pts = np.vstack([pts, rng.uniform(4, c - 5, (cfg.points - n_kp, 2))])
    opt_pts = (pts + [x0, y0]) @ rot.T + a[:, 2]
    ok = (opt_pts >= 4).all(1) & (opt_pts <= c - 5).all(1)
    ok &= optical.valid[np.clip(opt_pts[:, 1].round().astype(int), 0, c - 1), np.clip(opt_pts[:, 0].round().astype(int), 0, c - 1)]
    ok &= sar.valid[pts[:, 1].astype(int), pts[:, 0].astype(int)]
    if ok.sum() < 32:
        return None
    return Sample(sar, optical, pts[ok].astype(np.float32), opt_pts[ok].astype(np.float32), pair.sar.land_use)
