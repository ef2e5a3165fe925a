"""Array-level registration: keypoints, descriptors, matching and robust fitting for one image pair.

Used by the file pipeline (``pipeline.register``) and by the evaluation harness, so both measure the
same code. Coordinates are array-index pixels (x=col, y=row, pixel centres on integers).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from typing import Optional

import numpy as np

from .config import EngineConfig
from .descriptors.base import Describer, PreparedImage
from .geometry.fit import FitResult, apply_h, fit_transform
from .keypoints.pcfast import detect_pcfast
from .matching import mutual_nearest_neighbours
from .progress import Progress
from .refine import refine_and_refit


@dataclass
class PairMatch:
    kp_optical: np.ndarray  # (N0, 2)
    kp_sar: np.ndarray  # (N1, 2)
    matches: np.ndarray  # (K, 2) indices into kp_optical, kp_sar
    similarity: np.ndarray  # (K,)
    fit: Optional[FitResult]  # maps SAR points -> optical points; None when fitting failed
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def inlier_mask(self) -> np.ndarray:
        return self.fit.inliers if self.fit is not None else np.zeros(len(self.matches), bool)

    @property
    def n_inliers(self) -> int:
        return int(self.inlier_mask.sum())

    def rescaled(self, f_optical: tuple[float, float], f_sar: tuple[float, float]) -> "PairMatch":
        """The same matches in pixels of grids (fx, fy) times finer (index coords: x' = (x + 0.5) fx - 0.5),
        with the fitted transform conjugated accordingly."""
        if tuple(f_optical) == (1.0, 1.0) and tuple(f_sar) == (1.0, 1.0):
            return self
        def up(f: tuple[float, float]) -> np.ndarray:
            fx, fy = f
            return np.array([[fx, 0, 0.5 * fx - 0.5], [0, fy, 0.5 * fy - 0.5], [0, 0, 1.0]])
        fit = None
        if self.fit is not None:
            m = up(f_optical) @ self.fit.matrix @ np.linalg.inv(up(f_sar))
            fit = FitResult(m, self.fit.inliers, self.fit.residuals * float(np.mean(f_optical)))
        return PairMatch(apply_h(up(f_optical), self.kp_optical), apply_h(up(f_sar), self.kp_sar),
                         self.matches, self.similarity, fit, self.timings)

    def points(self, inliers_only: bool = True) -> tuple[np.ndarray, np.ndarray]:
        """(optical points, SAR points) of the matches, (K, 2) each."""
        m = self.matches[self.inlier_mask] if inliers_only else self.matches
        return self.kp_optical[m[:, 0]], self.kp_sar[m[:, 1]]


def match_prepared(
    optical: PreparedImage,
    sar: PreparedImage,
    describer: Describer,
    cfg: EngineConfig,
    progress: Optional[Progress] = None,
) -> PairMatch:
    progress = progress or Progress()
    t = {}
    t0 = time.perf_counter()
    own = getattr(describer, "detect", None)  # descriptors with their own detector (SIFT) bypass PC-FAST
    kp_o = own(optical) if own else detect_pcfast(optical.pc.max_moment, optical.valid, cfg.keypoints)[0]
    kp_s = own(sar) if own else detect_pcfast(sar.pc.max_moment, sar.valid, cfg.keypoints)[0]
    t["keypoints"] = time.perf_counter() - t0
    progress.report(0.2, f"{len(kp_o)} optical / {len(kp_s)} SAR keypoints")
    t0 = time.perf_counter()
    d_o = describer.describe(optical, kp_o)
    progress.report(0.5, "optical descriptors")
    d_s = describer.describe(sar, kp_s)
    t["describe"] = time.perf_counter() - t0
    progress.report(0.8, "SAR descriptors")
    t0 = time.perf_counter()
    match_cfg = cfg.matching
    if getattr(describer, "ratio", None) is not None and match_cfg.ratio is None:
        match_cfg = replace(match_cfg, ratio=describer.ratio)
    pairs, sim = mutual_nearest_neighbours(d_o, d_s, match_cfg)
    fit = fit_transform(kp_s[pairs[:, 1]], kp_o[pairs[:, 0]], cfg.fit) if len(pairs) else None
    if cfg.refine.enabled and getattr(describer, "refine", True) and fit is not None and fit.n_inliers >= cfg.fit.min_inliers:
        kp_o, fit = _refine(optical, sar, kp_o, kp_s, pairs, fit, cfg)
    t["match_fit"] = time.perf_counter() - t0
    progress.report(1.0, f"{len(pairs)} matches, {fit.n_inliers if fit else 0} inliers")
    return PairMatch(kp_o, kp_s, pairs, sim, fit, t)


def _refine(optical: PreparedImage, sar: PreparedImage, kp_o: np.ndarray, kp_s: np.ndarray, pairs: np.ndarray,
            fit: FitResult, cfg: EngineConfig) -> tuple[np.ndarray, FitResult]:
    """Sub-pixel refinement of the inlier matches; returns moved optical keypoints and the refitted model
    (inliers/residuals over all matches: only refined-and-consistent matches stay inliers)."""
    idx = np.flatnonzero(fit.inliers)
    p_opt, p_sar = kp_o[pairs[idx, 0]], kp_s[pairs[idx, 1]]
    refined, new_fit = refine_and_refit(optical, sar, p_opt, p_sar, fit, cfg.fit, cfg.refine)
    if new_fit is fit:
        return kp_o, fit
    kp_o = kp_o.astype(np.float64, copy=True)
    kp_o[pairs[idx, 0]] = refined
    inliers = np.zeros(len(pairs), bool)
    inliers[idx] = new_fit.inliers
    residuals = np.linalg.norm(apply_h(new_fit.matrix, kp_s[pairs[:, 1]]) - kp_o[pairs[:, 0]], axis=1).astype(np.float32)
    return kp_o, FitResult(new_fit.matrix, inliers, residuals)


def prepare_and_match(
    optical_bands: np.ndarray,
    optical_valid: np.ndarray,
    sar_bands: np.ndarray,
    sar_valid: np.ndarray,
    sar_dtype: str,
    describer: Describer,
    cfg: EngineConfig,
    progress: Optional[Progress] = None,
) -> PairMatch:
    """Normalise + phase congruency for both images, then :func:`match_prepared`."""
    from .prepare import prepare_optical, prepare_sar

    progress = progress or Progress()
    t0 = time.perf_counter()
    opt = prepare_optical(optical_bands, optical_valid, cfg)
    progress.report(0.2, "optical phase congruency")
    sar = prepare_sar(sar_bands, sar_valid, sar_dtype, cfg)
    progress.report(0.4, "SAR phase congruency")
    t_prep = time.perf_counter() - t0
    result = match_prepared(opt, sar, describer, cfg, progress.sub(0.4, 1.0))
    result.timings["prepare"] = t_prep
    return result
