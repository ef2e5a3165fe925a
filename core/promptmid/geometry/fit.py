"""Robust 2-D transform estimation with OpenCV's USAC (MAGSAC++) and helpers on 3x3 matrices."""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

MODELS = ("similarity", "affine", "homography")


@dataclass
class FitConfig:
    model: str = "affine"  # similarity | affine | homography
    threshold_px: float = 4.0  # inlier reprojection threshold, work-grid px (4 beat 2/3/5/6 on train pairs)
    confidence: float = 0.999
    max_iters: int = 10000
    min_inliers: int = 10  # fewer: registration is reported as failed


@dataclass
class FitResult:
    matrix: np.ndarray  # 3x3, maps src (x, y, 1) -> dst
    inliers: np.ndarray = field(default_factory=lambda: np.zeros(0, bool))
    residuals: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))  # px, all input pairs

    @property
    def n_inliers(self) -> int:
        return int(self.inliers.sum())


def apply_h(matrix: np.ndarray, pts: np.ndarray) -> np.ndarray:
    """Apply a 3x3 projective matrix to (N, 2) points."""
    pts = np.asarray(pts, np.float64).reshape(-1, 2)
    hom = np.column_stack([pts, np.ones(len(pts))]) @ np.asarray(matrix, np.float64).T
    return (hom[:, :2] / hom[:, 2:3]).astype(np.float64)


def fit_transform(src: np.ndarray, dst: np.ndarray, cfg: FitConfig | None = None) -> FitResult | None:
    """Estimate the transform mapping src -> dst points ((N, 2) each) robustly; None when it fails."""
    cfg = cfg or FitConfig()
    if cfg.model not in MODELS:
        raise ValueError(f"Unknown model '{cfg.model}' (use one of {', '.join(MODELS)}).")
    need = {"similarity": 2, "affine": 3, "homography": 4}[cfg.model]
    if len(src) < max(need, 4):
        return None
    s = np.ascontiguousarray(src, np.float64).reshape(-1, 1, 2)
    d = np.ascontiguousarray(dst, np.float64).reshape(-1, 1, 2)
    if cfg.model == "homography":
        m, mask = cv2.findHomography(s, d, cv2.USAC_MAGSAC, cfg.threshold_px, maxIters=cfg.max_iters, confidence=cfg.confidence)
    else:
        # OpenCV 4.10's estimateAffinePartial2D knows no USAC method: RANSAC + LM refinement there.
        fn, method = ((cv2.estimateAffinePartial2D, cv2.RANSAC) if cfg.model == "similarity"
                      else (cv2.estimateAffine2D, cv2.USAC_MAGSAC))
        m, mask = fn(s, d, method=method, ransacReprojThreshold=cfg.threshold_px,
                     maxIters=cfg.max_iters, confidence=cfg.confidence)
        if m is not None:
            m = np.vstack([m, [0.0, 0.0, 1.0]])
    if m is None or mask is None or not np.all(np.isfinite(m)):
        return None
    inliers = mask.ravel().astype(bool)
    residuals = np.linalg.norm(apply_h(m, src) - np.asarray(dst, np.float64), axis=1).astype(np.float32)
    # MAGSAC's mask can keep points slightly beyond the threshold; make the inlier set honest.
    inliers &= residuals <= cfg.threshold_px
    return FitResult(m, inliers, residuals)
