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


def expected_error(src: np.ndarray, dst: np.ndarray, matrix: np.ndarray, at: np.ndarray) -> np.ndarray:
    """Expected position error (px, 1 sigma, x and y combined) of a least-squares affine transform fitted
    to ``src -> dst`` inliers, predicted at the points ``at`` ((M, 2), e.g. corners and centre of the
    overlap): sigma^2 [p 1] (X^T X)^-1 [p 1]^T per axis, sigma from the residuals with n - 3 degrees of
    freedom. This is the error of the *transform*, which shrinks with more and better spread tie points,
    unlike the tie points' residual scatter. inf when fewer than 4 points."""
    src, dst = np.asarray(src, np.float64).reshape(-1, 2), np.asarray(dst, np.float64).reshape(-1, 2)
    at = np.asarray(at, np.float64).reshape(-1, 2)
    n = len(src)
    if n < 4:
        return np.full(len(at), np.inf)
    x = np.column_stack([src, np.ones(n)])
    res = apply_h(matrix, src) - dst
    sigma2 = float(np.sum(res ** 2)) / (2.0 * max(n - 3, 1))  # per axis
    try:
        cov = np.linalg.inv(x.T @ x)
    except np.linalg.LinAlgError:
        return np.full(len(at), np.inf)
    p = np.column_stack([at, np.ones(len(at))])
    var = np.einsum("ij,jk,ik->i", p, cov, p) * sigma2
    return np.sqrt(2.0 * np.maximum(var, 0.0))
