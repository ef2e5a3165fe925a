"""AROSICS (GFZ, Scheffler et al. 2017) as a benchmark peer, scored by the engine's evaluation harness.

Runs in the peers venv (`make peers`), which also sees the project venv. Two modes, as a user would run it:
- ``global``: ``COREG``, one X/Y shift from phase correlation in one matching window; the transform is a
  pure translation, and with a single "match" per pair it can never reach the paper's NCM >= 10, so its
  SR is 0 by definition: its registration error of the shift is the number to read.
- ``local``: ``COREG_LOCAL``, a grid of windows, each phase-correlated, then AROSICS's own reliability,
  SSIM and RANSAC tie-point filters; its accepted tie points are the inliers, and the transform is the
  least-squares affine through them (GDAL polynomial 1, what warping with those GCPs would do).

Both images are given to AROSICS as the engine sees them (grey optical, SAR normalised to dB and
stretched), on a synthetic 10 m UTM grid (AROSICS needs a map grid; identical for both, so the protocol's
warp is the only misregistration). ``max_shift`` is set to cover the protocol's warps (rotation up to 10
degrees moves window centres by tens of pixels); AROSICS's default of 5 px would fail every pair.

    python scripts/peers/arosics_peer.py PAIRS --mode local --json out.json [--seed 0] [--limit N]
    python scripts/peers/arosics_peer.py --check
"""

from __future__ import annotations

import argparse
import sys
import warnings

import numpy as np
from osgeo import gdal, osr

from promptmid.config import EngineConfig
from promptmid.errors import RegistrationError
from promptmid.geometry.fit import FitResult, apply_h
from promptmid.io.normalize import normalize_sar, optical_to_gray
from promptmid.registration import PairMatch

PIXEL_M = 10.0


def _geoarray(img: np.ndarray, valid: np.ndarray):
    from geoarray import GeoArray

    srs = osr.SpatialReference()
    srs.ImportFromEPSG(32633)
    data = np.where(valid, img, -9999.0).astype(np.float32)
    return GeoArray(data, (500000.0, PIXEL_M, 0.0, 5000000.0, 0.0, -PIXEL_M), srs.ExportToWkt(), nodata=-9999.0)


def _least_squares_affine(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    a = np.column_stack([src, np.ones(len(src))])
    coef, *_ = np.linalg.lstsq(a, dst, rcond=None)
    return np.vstack([coef.T, [0.0, 0.0, 1.0]])


class ArosicsMatcher:
    """A :class:`promptmid.evaluation.protocol.PairMatcher` over AROSICS."""

    def __init__(self, mode: str) -> None:
        if mode not in ("global", "local"):
            raise ValueError(mode)
        self.mode = mode
        self.name = f"arosics-{mode}"
        self.min_inliers = 1 if mode == "global" else 3  # a shift needs one estimate; an affine three points

    def __call__(self, optical, optical_valid, sar, sar_valid, sar_dtype, cfg: EngineConfig) -> PairMatch:
        from arosics import COREG, COREG_LOCAL

        ref = _geoarray(optical_to_gray(optical, optical_valid, cfg.optical_norm), optical_valid)
        tgt = _geoarray(normalize_sar(sar[0], sar_valid, sar_dtype, cfg.sar_norm), sar_valid)
        side = min(sar.shape[1:])
        win = int(max(64, min(256, side // 4)))
        max_shift = int(side // 4)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if self.mode == "global":
                return self._global(COREG(ref, tgt, ws=(2 * win, 2 * win), max_shift=max_shift, q=True, ignore_errors=True), sar)
            cl = COREG_LOCAL(ref, tgt, grid_res=win // 2, window_size=(win, win), max_shift=max_shift, q=True, CPUs=1)
            return self._local(cl.CoRegPoints_table)

    @staticmethod
    def _global(cr, sar: np.ndarray) -> PairMatch:
        cr.calculate_spatial_shifts()
        if not cr.success or cr.x_shift_px is None:
            why = str(cr.tracked_errors[-1]) if cr.tracked_errors else "no shift found"
            raise RegistrationError(f"AROSICS COREG: {why}")
        # One correspondence at the image centre; the transform is the translation AROSICS reports
        # (shift = reference position - target position, checked on a synthetic shift).
        c = np.array([[(sar.shape[2] - 1) / 2.0, (sar.shape[1] - 1) / 2.0]])
        d = np.array([cr.x_shift_px, cr.y_shift_px], float)
        m = np.array([[1.0, 0.0, d[0]], [0.0, 1.0, d[1]], [0.0, 0.0, 1.0]])
        return PairMatch(c + d, c, np.array([[0, 0]]), np.ones(1), FitResult(m, np.ones(1, bool), np.zeros(1, np.float32)))

    @staticmethod
    def _local(tab) -> PairMatch:
        found = tab[(tab["X_SHIFT_PX"] != -9999) & tab["X_SHIFT_PX"].notna()]
        p_sar = found[["X_IM", "Y_IM"]].to_numpy(float)
        p_opt = p_sar + found[["X_SHIFT_PX", "Y_SHIFT_PX"]].to_numpy(float)
        # No OUTLIER column: AROSICS found too few shifts to run its filters, so none is vetted (accepted).
        accepted = ((found["OUTLIER"] == False).to_numpy(bool) if "OUTLIER" in found.columns  # noqa: E712 (bool/-9999 column)
                    else np.zeros(len(found), bool))
        matches = np.column_stack([np.arange(len(found))] * 2).astype(int)
        sim = np.clip(found["RELIABILITY"].to_numpy(float) / 100.0, 0, 1) if len(found) else np.zeros(0)
        if accepted.sum() < 3:
            raise RegistrationError(f"AROSICS COREG_LOCAL: {int(accepted.sum())} of {len(tab)} grid points accepted "
                                    f"({len(found)} with a shift before its filters)")
        m = _least_squares_affine(p_sar[accepted], p_opt[accepted])
        res = np.linalg.norm(apply_h(m, p_sar) - p_opt, axis=1).astype(np.float32)
        return PairMatch(p_opt, p_sar, matches.reshape(-1, 2), sim, FitResult(m, accepted, res))


def self_check(image: str) -> str:
    """The adapter's conventions on the case AROSICS is built for: a real optical image against itself
    shifted by (+6.5, -3) px. Both modes must recover the shift at the image centre; exits otherwise."""
    import os

    import cv2

    from promptmid.io.rasters import read_pixels

    if not os.path.isfile(image):
        return f"self-check skipped ({image} not found)"
    img, valid, _ = read_pixels(image, max_side=512)
    h, w = valid.shape
    shifted = np.stack([cv2.warpAffine(b, np.float32([[1, 0, 6.5], [0, 1, -3]]), (w, h)) for b in img])
    out = []
    for mode in ("global", "local"):
        pm = ArosicsMatcher(mode)(shifted, valid, img[:1], valid, "Byte", EngineConfig())
        c = np.array([[(w - 1) / 2.0, (h - 1) / 2.0]])
        got = (apply_h(pm.fit.matrix, c) - c)[0]
        if np.abs(got - [6.5, -3.0]).max() > 0.5:  # a sign or axis slip would be off by several px
            raise SystemExit(f"[peers] AROSICS {mode} self-check failed: shift {got}, expected (6.5, -3)")
        out.append(f"{mode} ({got[0]:.2f}, {got[1]:.2f})")
    return "recovers a (6.5, -3) px shift: " + ", ".join(out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("pairs_dir", nargs="?")
    ap.add_argument("--mode", choices=("global", "local"), default="local")
    ap.add_argument("--json")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--protocol", choices=("paper", "georef"), default="paper")
    ap.add_argument("--limit", type=int)
    ap.add_argument("--check-image", default="../shared/data/optical-sar/test/s1s2_163/optical.tif")
    ap.add_argument("--check", action="store_true", help="import AROSICS, check the adapter on a synthetic shift, exit")
    args = ap.parse_args(argv)
    import arosics

    if args.check:
        print(f"[peers] ok: arosics {arosics.__version__}, gdal {gdal.__version__}; {self_check(args.check_image)}")
        return 0
    if not args.pairs_dir or not args.json:
        ap.error("pairs_dir and --json are required")
    from promptmid.evaluation.protocol import ProtocolConfig, evaluate_to_json

    s = evaluate_to_json(args.pairs_dir, ArosicsMatcher(args.mode), EngineConfig(),
                         ProtocolConfig.named(args.protocol, args.seed), args.json, args.limit)
    print(f"{s.engine}: SR {s.sr:.1f} %, median registration error {s.reg_err_median_px:.2f} px, {s.sec_per_pair:.2f} s/pair")
    return 0


if __name__ == "__main__":
    sys.exit(main())
