"""Array-level registration of one image pair, as named stages:

``prepare`` (normalise, phase congruency) -> ``search`` (global rotation / scale / shift from dense maps,
``search.py``) -> ``guided`` (tie points near the predicted positions, ``guided.py``) -> ``fit`` (robust
affine, kept as the similarity through its inliers, ``geometry/fit.py``) -> ``verdict`` (registered /
uncertain / failed, ``verdict.py``).

Used by the file pipeline, the tiles of large scenes and the evaluation harness, so what is measured is
what users run. Coordinates are array-index pixels (x=col, y=row, pixel centres on integers).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from typing import Optional

import numpy as np

from .config import EngineConfig
from .dense.base import DenseFeaturizer
from .dense.cfog import CfogFeaturizer
from .descriptors.base import Describer, PreparedImage
from .geometry.fit import FitResult, apply_h, fit_tie_points, fit_transform
from .guided import TiePoints, descriptor_tie_points, template_tie_points
from .keypoints.pcfast import detect_pcfast
from .matching import mutual_nearest_neighbours
from .progress import Progress
from .search import SearchResult, global_search
from .verdict import Verdict, VerdictConfig, VerdictSets, consistent_text, gather_evidence, judge, valid_side


@dataclass
class PairMatch:
    kp_optical: np.ndarray  # (N0, 2) optical points of the tie points (or keypoints of a sparse peer)
    kp_sar: np.ndarray  # (N1, 2)
    matches: np.ndarray  # (K, 2) indices into kp_optical, kp_sar
    similarity: np.ndarray  # (K,)
    fit: Optional[FitResult]  # maps SAR points -> optical points; None when fitting failed
    timings: dict[str, float] = field(default_factory=dict)
    search: Optional[SearchResult] = None
    verdict: Optional[Verdict] = None

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
            def conj(h: np.ndarray) -> np.ndarray:
                return up(f_optical) @ h @ np.linalg.inv(up(f_sar))
            fit = FitResult(conj(self.fit.matrix), self.fit.inliers, self.fit.residuals * float(np.mean(f_optical)),
                            None if self.fit.robust is None else conj(self.fit.robust))
        return PairMatch(apply_h(up(f_optical), self.kp_optical), apply_h(up(f_sar), self.kp_sar),
                         self.matches, self.similarity, fit, self.timings, self.search, self.verdict)

    def points(self, inliers_only: bool = True) -> tuple[np.ndarray, np.ndarray]:
        """(optical points, SAR points) of the matches, (K, 2) each."""
        m = self.matches[self.inlier_mask] if inliers_only else self.matches
        return self.kp_optical[m[:, 0]], self.kp_sar[m[:, 1]]


def uses_search(describer: Optional[Describer]) -> bool:
    """Peers that are benchmarked as users run them (SIFT: whole-image sparse matching) set ``guided =
    False``; every engine of ours goes global -> guided."""
    return getattr(describer, "guided", True)


def dense_featurizer(describer: Optional[Describer], cfg: EngineConfig) -> DenseFeaturizer:
    """The network's own maps when it was trained for dense use, else the handcrafted CFOG maps."""
    learned = getattr(describer, "featurizer", None)
    return (learned() if learned is not None else None) or CfogFeaturizer(cfg.dense)


def verdict_config(describer: Optional[Describer], cfg: EngineConfig, sar_valid: np.ndarray) -> VerdictConfig:
    """The thresholds calibrated for the describer's model when it carries them, else the engine's; for the
    search mode in use (full, or near the georeference) and, where the model's calibration split them, the
    size of the SAR image's valid work-grid area (``verdict.valid_side``)."""
    own: Optional[VerdictSets] = getattr(describer, "verdict", None)
    if own is not None:
        return own.pick(cfg.search.near_georef, valid_side(sar_valid))
    return cfg.verdict_georef if cfg.search.near_georef else cfg.verdict


def match_prepared(
    optical: PreparedImage,
    sar: PreparedImage,
    describer: Optional[Describer],
    cfg: EngineConfig,
    progress: Optional[Progress] = None,
) -> PairMatch:
    """Search, guided tie points, fit and verdict for two prepared images on comparable grids."""
    progress = progress or Progress()
    if not uses_search(describer):
        return _sparse_match(optical, sar, describer, cfg, progress)
    t: dict[str, float] = {}
    t0 = time.perf_counter()
    dense = dense_featurizer(describer, cfg)
    d_opt, d_sar = dense.dense_map(optical), dense.dense_map(sar)
    t["dense"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    found = global_search(d_opt, d_sar, sar.shape, cfg.search, progress.sub(0.0, 0.4))
    t["search"] = time.perf_counter() - t0
    if found.best is None:
        none = TiePoints.empty()
        verdict = judge(gather_evidence(none, None, none, None, sar.valid, None, 0.0, 0.0), verdict_config(describer, cfg, sar.valid))
        verdict.reason = "no pose of the SAR image overlaps the optical image enough to compare them"
        return _as_pair_match(TiePoints.empty(), None, t, found, verdict)
    h = found.best.matrix(sar.shape)
    progress.report(0.4, f"global search: rotation {found.best.rotation_deg:.1f} deg, scale {found.best.scale:.3f}, "
                         f"score {found.best.score:.2f}")
    t0 = time.perf_counter()
    kp_sar = detect_pcfast(sar.pc.max_moment, sar.valid, cfg.keypoints)[0]
    # Pass 1: templates around the global estimate (its error is a few px); a first robust fit.
    pass1 = ties = template_tie_points(d_opt, d_sar, h, kp_sar, cfg.guided)
    first = fit_tie_points(pass1.sar, pass1.optical, cfg.fit)
    if first is not None and first.n_inliers >= cfg.fit.min_inliers:
        # Pass 2: around the first fit, with a tight radius: templates again, and descriptor matches, which
        # only count where they agree with the structure the templates found.
        h2 = first.matrix
        tight = replace(cfg.guided, radius_px=cfg.guided.refine_radius_px)
        ties = template_tie_points(d_opt, d_sar, h2, kp_sar, tight)
        if describer is not None and getattr(describer, "describe", None) is not None:
            kp_opt = detect_pcfast(optical.pc.max_moment, optical.valid, cfg.keypoints)[0]
            ties = ties.concat(descriptor_tie_points(kp_opt, describer.describe(optical, kp_opt), kp_sar,
                                                     describer.describe(sar, kp_sar), h2, tight.radius_px))
    t["guided"] = time.perf_counter() - t0
    progress.report(0.8, f"{len(ties)} refined tie points")
    t0 = time.perf_counter()
    fit = fit_tie_points(ties.sar, ties.optical, cfg.fit)
    # Agreement is judged on pass 1 (pass 2 agrees with it by construction), accuracy on the final fit.
    evidence = gather_evidence(pass1, first, ties, fit, sar.valid, h, found.peak_ratio, found.best.score)
    verdict = judge(evidence, verdict_config(describer, cfg, sar.valid))
    t["fit_verdict"] = time.perf_counter() - t0
    # the verdict's counts (pass 1): pass 2's points agree with the fit by construction
    progress.report(1.0, f"{consistent_text(evidence.n_inliers, evidence.n_tie_points)}: {verdict.verdict}")
    return _as_pair_match(ties, fit, t, found, verdict)


def _as_pair_match(ties: TiePoints, fit: Optional[FitResult], t: dict[str, float], found: Optional[SearchResult],
                   verdict: Verdict) -> PairMatch:
    idx = np.arange(len(ties))
    return PairMatch(ties.optical, ties.sar, np.column_stack([idx, idx]), ties.score, fit, t, found, verdict)


def _sparse_match(optical: PreparedImage, sar: PreparedImage, describer: Describer, cfg: EngineConfig,
                  progress: Progress) -> PairMatch:
    """Whole-image keypoint matching (no global search): how peers such as SIFT are used."""
    t: dict[str, float] = {}
    t0 = time.perf_counter()
    own = getattr(describer, "detect", None)
    kp_o = own(optical) if own else detect_pcfast(optical.pc.max_moment, optical.valid, cfg.keypoints)[0]
    kp_s = own(sar) if own else detect_pcfast(sar.pc.max_moment, sar.valid, cfg.keypoints)[0]
    d_o, d_s = describer.describe(optical, kp_o), describer.describe(sar, kp_s)
    match_cfg = cfg.matching
    if getattr(describer, "ratio", None) is not None and match_cfg.ratio is None:
        match_cfg = replace(match_cfg, ratio=describer.ratio)
    pairs, sim = mutual_nearest_neighbours(d_o, d_s, match_cfg)
    fit = fit_transform(kp_s[pairs[:, 1]], kp_o[pairs[:, 0]], cfg.fit) if len(pairs) else None
    t["match_fit"] = time.perf_counter() - t0
    p_sar = kp_s[pairs[:, 1]] if len(pairs) else np.zeros((0, 2))
    p_opt = kp_o[pairs[:, 0]] if len(pairs) else np.zeros((0, 2))
    ties = TiePoints(p_sar, p_opt, sim)
    verdict = judge(gather_evidence(ties, fit, ties, fit, sar.valid, None, float("nan"), float("nan")), cfg.verdict)
    progress.report(1.0, f"{len(pairs)} matches, {fit.n_inliers if fit else 0} inliers: {verdict.verdict}")
    return PairMatch(kp_o, kp_s, pairs, sim, fit, t, None, verdict)


def prepare_and_match(
    optical_bands: np.ndarray,
    optical_valid: np.ndarray,
    sar_bands: np.ndarray,
    sar_valid: np.ndarray,
    sar_dtype: str,
    describer: Optional[Describer],
    cfg: EngineConfig,
    progress: Optional[Progress] = None,
) -> PairMatch:
    """Normalise + phase congruency for both images, then :func:`match_prepared`."""
    from .prepare import prepare_optical, prepare_sar

    progress = progress or Progress()
    t0 = time.perf_counter()
    opt = prepare_optical(optical_bands, optical_valid, cfg)
    progress.report(0.1, "optical prepared")
    sar = prepare_sar(sar_bands, sar_valid, sar_dtype, cfg)
    progress.report(0.2, "SAR prepared")
    t_prep = time.perf_counter() - t0
    result = match_prepared(opt, sar, describer, cfg, progress.sub(0.2, 1.0))
    result.timings["prepare"] = t_prep
    return result
