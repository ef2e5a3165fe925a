"""Evaluation protocols on co-registered optical-SAR pairs.

``paper`` (PromptMID / ISPRS 2025): the optical image is warped by a seeded random rotation in [-10, 10]
degrees and scale in [0.8, 1] about its centre; that matrix H is the ground truth mapping SAR (= original
optical) pixels to warped-optical pixels. ``georef``: what two georeferenced rasters differ by (shift up
to +-30 px, rotation +-2 degrees, scale 0.97-1.03), and the engine searches as it does for a
georeferenced pair (a small search around the georeference).

A match is *correct* when |H(p_sar) - p_opt| < 3 px after outlier removal; NCM = number of correct
matches. A pair succeeds when NCM >= 10 *and* the engine's verdict is ``registered`` (a result the engine
itself calls uncertain is not what a user gets); RMSE is over the correct matches, a failed pair gets 20
and is left out of the mean NCM/RMSE. Beyond the paper: the registration error of the estimated
transform against H on a grid of check points, infinite unless the verdict is ``registered``;
``n_claimed`` (pairs called registered) and ``n_false_accept`` (claimed, but more than 5 px wrong).
"""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import asdict, dataclass, field, replace
from typing import Callable, Optional, Protocol

import cv2
import numpy as np

from ..config import EngineConfig
from ..descriptors.base import Describer
from ..errors import InputError, PromptMIDError
from ..geometry.fit import apply_h
from ..io.rasters import downsample, raster_info, read_pixels
from ..progress import Progress
from ..jsonutil import json_safe
from ..registration import PairMatch, prepare_and_match
from ..search import georef_search


PROTOCOLS = ("paper", "georef")


@dataclass
class ProtocolConfig:
    seed: int = 0
    name: str = "paper"
    max_rotation_deg: float = 10.0
    scale_range: tuple[float, float] = (0.8, 1.0)
    max_shift_px: float = 0.0  # uniform in [-max, max] per axis, native px
    correct_px: float = 3.0
    false_accept_px: float = 5.0
    success_ncm: int = 10
    failed_rmse: float = 20.0
    check_grid: int = 10  # check points per side for the registration error

    @staticmethod
    def named(name: str, seed: int = 0) -> "ProtocolConfig":
        if name == "paper":
            return ProtocolConfig(seed=seed)
        if name == "georef":
            return ProtocolConfig(seed=seed, name="georef", max_rotation_deg=2.0, scale_range=(0.97, 1.03), max_shift_px=30.0)
        raise InputError(f"Unknown protocol '{name}' (use {', '.join(PROTOCOLS)}).")


@dataclass
class PairResult:
    pair_id: str
    dataset: str
    rotation_deg: float
    scale: float
    n_matches: int
    n_inliers: int
    ncm: int
    success: bool
    rmse: float
    reg_err_px: float  # RMS over the check grid of |estimated(p) - H(p)|; inf unless the verdict is registered
    seconds: float
    error: str = ""
    verdict: str = "failed"
    confidence: float = 0.0
    fit_err_px: float = math.inf  # the same error for any fitted transform, whatever the verdict (calibration)
    reason: str = ""
    evidence: dict = field(default_factory=dict)  # what the verdict was decided on (verdict.Evidence)


@dataclass
class Summary:
    engine: str
    dataset: str
    n_pairs: int
    sr: float  # percent
    ncm: float  # mean over successful pairs
    rmse: float  # mean over successful pairs (paper convention)
    reg_err_median_px: float  # over all pairs, failures count as infinite
    reg_err_p90_px: float
    sec_per_pair: float
    n_claimed: int = 0  # verdict registered
    n_false_accept: int = 0  # claimed, but registration error > false_accept_px
    protocol: str = "paper"
    pairs: list[PairResult] = field(default_factory=list)


def random_similarity(rng: np.random.Generator, width: int, height: int, cfg: ProtocolConfig) -> tuple[np.ndarray, float, float]:
    """Ground-truth 3x3 matrix: rotation + isotropic scale about the image centre (pixel-index coords),
    then a shift when the protocol has one."""
    angle = float(rng.uniform(-cfg.max_rotation_deg, cfg.max_rotation_deg))
    scale = float(rng.uniform(*cfg.scale_range))
    cx, cy = (width - 1) / 2.0, (height - 1) / 2.0
    m = cv2.getRotationMatrix2D((cx, cy), angle, scale)
    if cfg.max_shift_px > 0:
        m[:, 2] += rng.uniform(-cfg.max_shift_px, cfg.max_shift_px, 2)
    return np.vstack([m, [0.0, 0.0, 1.0]]), angle, scale


def warp_optical(bands: np.ndarray, valid: np.ndarray, h: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Warp (B, H, W) bands and the valid mask by h onto the same-size canvas; outside becomes invalid."""
    _, hh, ww = bands.shape
    warped = np.stack([cv2.warpPerspective(b, h, (ww, hh), flags=cv2.INTER_LINEAR, borderValue=0) for b in bands])
    wvalid = cv2.warpPerspective(valid.astype(np.uint8), h, (ww, hh), flags=cv2.INTER_NEAREST, borderValue=0) > 0
    return warped.astype(np.float32), wvalid


def check_grid(width: int, height: int, n: int, margin: float = 0.1) -> np.ndarray:
    xs = np.linspace(margin * (width - 1), (1 - margin) * (width - 1), n)
    ys = np.linspace(margin * (height - 1), (1 - margin) * (height - 1), n)
    gx, gy = np.meshgrid(xs, ys)
    return np.column_stack([gx.ravel(), gy.ravel()])


def dataset_of(pair_id: str) -> str:
    """Subset name from the pair id prefix (``s1s2_012`` -> ``s1s2``)."""
    return pair_id.split("_", 1)[0]


def sensor_of(pair_id: str) -> str:
    """The SAR sensor group of a pair: 3MOS ids carry it (``3mos_RCM_plain_00`` -> ``RCM``); any other id
    is its dataset (``s1s2_012`` -> ``s1s2``). The quality of the stated truth differs by sensor (README)."""
    parts = pair_id.split("_")
    return parts[1] if parts[0] == "3mos" and len(parts) > 2 else parts[0]


def list_pairs(pairs_dir: str) -> list[str]:
    if not os.path.isdir(pairs_dir):
        raise InputError(f"Pairs folder not found: {pairs_dir}")
    found = sorted(
        d for d in os.listdir(pairs_dir)
        if os.path.isfile(os.path.join(pairs_dir, d, "optical.tif")) and os.path.isfile(os.path.join(pairs_dir, d, "sar.tif"))
    )
    if not found:
        raise InputError(f"No pairs in {pairs_dir}: expected sub-folders holding optical.tif and sar.tif.")
    return found


def pair_land_use(pair_dir: str) -> Optional[str]:
    meta = os.path.join(pair_dir, "meta.json")
    if os.path.isfile(meta):
        with open(meta, encoding="utf-8") as fh:
            return json.load(fh).get("land_use")
    return None


class PairMatcher(Protocol):
    """Anything the harness can score: native-pixel arrays in, matches + fitted SAR->optical transform out.

    ``min_inliers`` is the support below which its transform is not trusted (a global shift estimator
    such as AROSICS's COREG has one "match" by construction). Peers outside the engine implement this."""

    name: str
    min_inliers: int

    def __call__(self, optical: np.ndarray, optical_valid: np.ndarray, sar: np.ndarray, sar_valid: np.ndarray,
                 sar_dtype: str, cfg: EngineConfig) -> PairMatch: ...


class DescriberMatcher:
    """The engine's own path: the file pipeline's work-grid downsampling, then :func:`prepare_and_match`."""

    def __init__(self, describer: Describer, cfg: EngineConfig) -> None:
        self.describer, self.name, self.min_inliers = describer, describer.name, cfg.fit.min_inliers

    def __call__(self, optical, optical_valid, sar, sar_valid, sar_dtype, cfg):
        (opt_d, opt_d_valid), f_opt = downsample(optical, optical_valid, cfg.max_side)
        (sar_d, sar_d_valid), f_sar = downsample(sar, sar_valid, cfg.max_side)
        pm = prepare_and_match(opt_d, opt_d_valid, sar_d, sar_d_valid, sar_dtype, self.describer, cfg)
        return pm.rescaled(f_opt, f_sar)  # points back in native pixels


def as_matcher(m: "Describer | PairMatcher", cfg: EngineConfig) -> PairMatcher:
    return m if hasattr(m, "min_inliers") else DescriberMatcher(m, cfg)  # type: ignore[arg-type]


def evaluate_pair(pair_dir: str, matcher: "Describer | PairMatcher", cfg: EngineConfig, pcfg: ProtocolConfig,
                  rng: np.random.Generator) -> PairResult:
    matcher = as_matcher(matcher, cfg)
    pair_id = os.path.basename(os.path.normpath(pair_dir))
    opt, opt_valid, _ = read_pixels(os.path.join(pair_dir, "optical.tif"))
    sar_path = os.path.join(pair_dir, "sar.tif")
    sar, sar_valid, _ = read_pixels(sar_path)
    h_gt, angle, scale = random_similarity(rng, opt.shape[2], opt.shape[1], pcfg)
    opt_w, opt_w_valid = warp_optical(opt, opt_valid, h_gt)
    pair_cfg = replace(cfg, land_use=pair_land_use(pair_dir) or cfg.land_use)
    if pcfg.name == "georef":  # search as the pipeline does for a georeferenced SAR
        pair_cfg = replace(pair_cfg, search=georef_search(cfg.search))
    t0 = time.perf_counter()
    error = ""
    try:
        pm: Optional[PairMatch] = matcher(opt_w, opt_w_valid, sar, sar_valid, raster_info(sar_path).dtype, pair_cfg)
    except PromptMIDError as exc:  # e.g. a constant image: counts as a failed pair, not a crashed run
        pm, error = None, str(exc)
    seconds = time.perf_counter() - t0
    if pm is None:
        return PairResult(pair_id, dataset_of(pair_id), angle, scale, 0, 0, 0, False, pcfg.failed_rmse, math.inf, seconds,
                          error, reason=error)
    verdict, confidence, reason = _verdict_of(pm, matcher.min_inliers)
    evidence = pm.verdict.evidence.as_dict() if pm.verdict is not None else {}
    p_opt, p_sar = pm.points(inliers_only=True)
    err = np.linalg.norm(apply_h(h_gt, p_sar) - p_opt, axis=1) if len(p_opt) else np.zeros(0)
    correct = err < pcfg.correct_px
    ncm = int(correct.sum())
    success = ncm >= pcfg.success_ncm and verdict == "registered"
    rmse = float(np.sqrt(np.mean(err[correct] ** 2))) if success else pcfg.failed_rmse
    fit_err = math.inf
    if pm.fit is not None:
        grid = check_grid(sar.shape[2], sar.shape[1], pcfg.check_grid)
        fit_err = float(np.sqrt(np.mean(np.sum((apply_h(pm.fit.matrix, grid) - apply_h(h_gt, grid)) ** 2, axis=1))))
    reg_err = fit_err if verdict == "registered" else math.inf
    return PairResult(pair_id, dataset_of(pair_id), angle, scale, len(pm.matches), pm.n_inliers, ncm, success, rmse, reg_err,
                      seconds, verdict=verdict, confidence=confidence, fit_err_px=fit_err, reason=reason, evidence=evidence)


def _verdict_of(pm: PairMatch, min_inliers: int) -> tuple[str, float, str]:
    """The engine's verdict; a peer without one claims any transform it returns with enough support."""
    if pm.verdict is not None:
        return pm.verdict.verdict, pm.verdict.confidence, pm.verdict.reason
    if pm.fit is not None and pm.n_inliers >= min_inliers:
        return "registered", 1.0, ""
    return "failed", 0.0, f"{pm.n_inliers} inliers"


def summarize(engine: str, dataset: str, results: list[PairResult], pcfg: Optional[ProtocolConfig] = None) -> Summary:
    pcfg = pcfg or ProtocolConfig()
    ok = [r for r in results if r.success]
    claimed = [r for r in results if r.verdict == "registered"]
    errs = np.array([r.reg_err_px for r in results], float)
    return Summary(
        engine=engine,
        dataset=dataset,
        n_pairs=len(results),
        sr=100.0 * len(ok) / max(len(results), 1),
        ncm=float(np.mean([r.ncm for r in ok])) if ok else 0.0,
        rmse=float(np.mean([r.rmse for r in ok])) if ok else math.nan,
        reg_err_median_px=float(np.median(errs)) if len(errs) else math.nan,
        reg_err_p90_px=float(np.percentile(errs, 90, method="inverted_cdf")) if len(errs) else math.nan,  # nearest rank: no interpolation with inf
        sec_per_pair=float(np.mean([r.seconds for r in results])) if results else math.nan,
        n_claimed=len(claimed),
        n_false_accept=sum(1 for r in claimed if not r.reg_err_px <= pcfg.false_accept_px),
        protocol=pcfg.name,
        pairs=results,
    )


def evaluate_folder(
    pairs_dir: str,
    matcher: "Describer | PairMatcher",
    cfg: EngineConfig,
    pcfg: ProtocolConfig | None = None,
    limit: Optional[int] = None,
    progress: Optional[Progress] = None,
    log: Optional[Callable[[PairResult], None]] = None,
    ids: Optional[list[str]] = None,
) -> dict[str, Summary]:
    """Evaluate every pair of a folder (or the pairs ``ids`` of it). Returns summaries keyed by dataset,
    plus ``"all"``.

    Each pair's random warp is drawn from its own generator seeded by (seed, pair index in sorted
    order of the evaluated pairs).
    """
    pcfg = pcfg or ProtocolConfig()
    progress = progress or Progress()
    matcher = as_matcher(matcher, cfg)
    ids = (sorted(ids) if ids is not None else list_pairs(pairs_dir))[:limit]
    results: list[PairResult] = []
    for i, pid in enumerate(ids):
        progress.report(i / len(ids), pid)
        rng = np.random.default_rng([pcfg.seed, i])
        r = evaluate_pair(os.path.join(pairs_dir, pid), matcher, cfg, pcfg, rng)
        results.append(r)
        if log is not None:
            log(r)
    progress.report(1.0, "done")
    out = {ds: summarize(matcher.name, ds, [r for r in results if r.dataset == ds], pcfg) for ds in sorted({r.dataset for r in results})}
    out["all"] = summarize(matcher.name, "all", results, pcfg)
    return out


def summary_json(summaries: dict[str, Summary]) -> dict:
    """JSON-ready dict; non-finite numbers become null (strict JSON has no Infinity)."""
    top = asdict(summaries["all"])
    top.pop("pairs")
    top["datasets"] = {k: {kk: vv for kk, vv in asdict(s).items() if kk != "pairs"} for k, s in summaries.items() if k != "all"}
    top["pairs"] = [asdict(p) for p in summaries["all"].pairs]
    return json_safe(top)


def evaluate_to_json(pairs_dir: str, matcher: "Describer | PairMatcher", cfg: EngineConfig, pcfg: ProtocolConfig,
                     json_path: str, limit: Optional[int] = None, log: Optional[Callable[[PairResult], None]] = None) -> Summary:
    """:func:`evaluate_folder`, the summary written to ``json_path`` (what the bench reads), the overall
    summary returned: the one path by which peers in their own environments report."""
    summaries = evaluate_folder(pairs_dir, matcher, cfg, pcfg, limit, log=log)
    with open(json_path, "w", encoding="utf-8") as fh:
        json.dump(summary_json(summaries), fh, indent=1)
    return summaries["all"]
