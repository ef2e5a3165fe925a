"""Robust 2-D transform estimation with OpenCV's USAC (MAGSAC++) and helpers on 3x3 matrices."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

import cv2
import numpy as np

MODELS = ("similarity", "affine", "homography")
FINAL_MODELS = ("similarity", "affine")


@dataclass
class FitConfig:
    model: str = "affine"  # similarity | affine | homography
    threshold_px: float = 4.0  # inlier reprojection threshold, work-grid px (4 beat 2/3/5/6 on train pairs)
    confidence: float = 0.999
    max_iters: int = 10000
    min_inliers: int = 10  # fewer: registration is reported as failed
    # What the guided pipeline keeps of the robust affine: "similarity" = the least-squares similarity
    # through its inliers (two images of the same ground differ by rotation, scale and shift; the affine's
    # two extra degrees of freedom mostly follow tie-point errors: on train pairs fits within 3 px rose
    # 87 -> 93 of 167 (paper protocol) and 36 -> 40 of 84 (georef), those > 5 px wrong fell 40 -> 32 and
    # 25 -> 17); "affine" keeps the affine itself.
    final: str = "similarity"


@dataclass
class FitResult:
    matrix: np.ndarray  # 3x3, maps src (x, y, 1) -> dst
    inliers: np.ndarray = field(default_factory=lambda: np.zeros(0, bool))
    residuals: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))  # px, all input pairs
    robust: Optional[np.ndarray] = None  # 3x3: the robust fit whose inliers ``matrix`` was refitted to, if any

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


def fit_tie_points(src: np.ndarray, dst: np.ndarray, cfg: FitConfig | None = None) -> FitResult | None:
    """The guided pipeline's fit stage: :func:`fit_transform`, then what ``cfg.final`` keeps of it."""
    cfg = cfg or FitConfig()
    if cfg.final not in FINAL_MODELS:
        raise ValueError(f"Unknown final model '{cfg.final}' (use one of {', '.join(FINAL_MODELS)}).")
    fit = fit_transform(src, dst, cfg) if len(src) else None
    if fit is None or cfg.final == "affine" or cfg.model != "affine":
        return fit
    return as_similarity(fit, src, dst)


def least_squares_similarity(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """3x3 similarity (x' = a x - b y + tx, y' = b x + a y + ty) minimising the squared distances of
    src -> dst ((N, 2) each, N >= 2)."""
    src, dst = np.asarray(src, np.float64).reshape(-1, 2), np.asarray(dst, np.float64).reshape(-1, 2)
    n = len(src)
    design = np.zeros((2 * n, 4))
    design[0::2] = np.column_stack([src[:, 0], -src[:, 1], np.ones(n), np.zeros(n)])
    design[1::2] = np.column_stack([src[:, 1], src[:, 0], np.zeros(n), np.ones(n)])
    a, b, tx, ty = np.linalg.lstsq(design, dst.reshape(-1), rcond=None)[0]
    return np.array([[a, -b, tx], [b, a, ty], [0.0, 0.0, 1.0]])


def as_similarity(fit: FitResult, src: np.ndarray, dst: np.ndarray) -> FitResult | None:
    """The least-squares similarity through ``fit``'s inliers (the points ``fit`` was estimated from),
    with the same inliers, residuals measured against the similarity, and ``fit``'s matrix kept as
    ``robust`` (its departure from a similarity is evidence for the verdict). None when ``fit`` mirrors the
    image: the least-squares similarity of a reflection collapses towards scale 0 and means nothing."""
    inl = fit.inliers
    if inl.sum() < 2:
        return fit
    if np.linalg.det(fit.matrix[:2, :2]) <= 0:  # a mirrored fit: no similarity (rotation + scale) can follow it
        return None
    m = least_squares_similarity(np.asarray(src)[inl], np.asarray(dst)[inl])
    residuals = np.linalg.norm(apply_h(m, src) - np.asarray(dst, np.float64), axis=1).astype(np.float32)
    return FitResult(m, inl.copy(), residuals, robust=fit.matrix)


def expected_error(src: np.ndarray, dst: np.ndarray, matrix: np.ndarray, at: np.ndarray, model: str = "affine") -> np.ndarray:
    """Expected position error (px, 1 sigma, x and y combined) of a least-squares ``model`` ("affine" or
    "similarity") fitted to ``src -> dst`` inliers, predicted at the points ``at`` ((M, 2), e.g. corners
    and centre of the overlap): affine, sigma^2 [p 1] (X^T X)^-1 [p 1]^T per axis with n - 3 degrees of
    freedom per axis; similarity, J (A^T A)^-1 J^T over its 4 parameters with 2n - 4. This is the error of
    the *transform*, which shrinks with more and better spread tie points, unlike the tie points' residual
    scatter. inf when fewer than 4 points."""
    src, dst = np.asarray(src, np.float64).reshape(-1, 2), np.asarray(dst, np.float64).reshape(-1, 2)
    at = np.asarray(at, np.float64).reshape(-1, 2)
    n = len(src)
    if n < 4:
        return np.full(len(at), np.inf)
    if model == "similarity":
        return _similarity_expected_error(src, dst, matrix, at)
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


def _similarity_jacobians(pts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """d(x', y') / d(a, b, tx, ty) of x' = a x - b y + tx, y' = b x + a y + ty at ``pts``: ((N, 4), (N, 4))."""
    one, zero = np.ones(len(pts)), np.zeros(len(pts))
    return (np.column_stack([pts[:, 0], -pts[:, 1], one, zero]), np.column_stack([pts[:, 1], pts[:, 0], zero, one]))


def _similarity_expected_error(src: np.ndarray, dst: np.ndarray, matrix: np.ndarray, at: np.ndarray) -> np.ndarray:
    jx, jy = _similarity_jacobians(src)
    design = np.vstack([jx, jy])
    res = apply_h(matrix, src) - dst
    sigma2 = float(np.sum(res ** 2)) / max(2 * len(src) - 4, 1)
    try:
        cov = np.linalg.inv(design.T @ design) * sigma2
    except np.linalg.LinAlgError:
        return np.full(len(at), np.inf)
    ax, ay = _similarity_jacobians(at)
    var = np.einsum("ij,jk,ik->i", ax, cov, ax) + np.einsum("ij,jk,ik->i", ay, cov, ay)
    return np.sqrt(np.maximum(var, 0.0))
