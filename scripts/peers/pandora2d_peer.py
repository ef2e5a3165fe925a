"""CNES Pandora2D as a benchmark peer, scored by the engine's evaluation harness.

Pandora2D (Apache-2.0, ``pip install pandora2d``) is a dense 2-D matcher: for every point of a grid (``step``)
of the left image it computes a matching cost over a window (``window_size``) against the right image shifted
by every integer (row, col) disparity in ``init +- range``, keeps the best (winner-takes-all) and can refine it
to sub-pixel. It runs in its own venv, ``.venv-pandora2d`` (``make peers``), which also sees the project venv.

How it is run here, as a user co-registering SAR onto optical would:
- images as the engine sees them: grey optical (already warped by the protocol), SAR normalised; SAR is the
  left (reference) image, so each grid point is a SAR point and ``p_opt = p_sar + (col_map, row_map)``;
- on the engine's work grid (``cfg.max_side``, 512 px: a 1024 px pair is downsampled, points scaled back);
- cost ``mutual_information`` (Pandora2D's multimodal cost; ``--cost zncc`` for comparison);
- two passes, because Pandora2D's cost volume always spans the whole disparity range (a per-pixel
  initial-disparity grid does not shrink it: 99 s for one 512 px pair): (1) the pair reduced to 128 px,
  window 31 px, integer disparities on an 8 px grid, ``range`` the largest corner displacement the engine's
  own search allows (``cfg.search``: +-12 deg, scale 0.75-1.05 -> +-28 px there, i.e. +-56 px on a 256 px
  tile and +-112 on the 512 px work grid; the georef protocol's search, +-3 deg and 48 work px -> +-19 to
  +-31 px); a robust affine (MAGSAC, 1.5 px) through them;
  (2) the optical resampled onto the SAR grid through that affine, Pandora2D again on the full work grid
  (window 31 px, a 32 x 32 grid of points) with ``range`` 4 px and its ``dichotomy`` refinement (4 halvings on the bicubic-resampled image: 1/16 px); the
  residual disparities are mapped back through the affine;
- grid points kept: finite disparity not on the edge of the search range (a winner on the edge means the
  true peak lies outside it); the transform is the engine's robust fit (``cfg.fit``: affine, MAGSAC, the
  same as the SIFT peer and our engines) through them, its inliers are the matches the harness scores.
  Pandora2D has no verdict, so any transform with >= 10 inliers is claimed; with hundreds of grid points a
  transform tens of px wrong still has >= 10 locally right ones (NCM), so read its registration error and
  false accepts, not its SR.

    python scripts/peers/pandora2d_peer.py PAIRS --json out.json [--protocol paper|georef] [--seed 0] [--limit N]
    python scripts/peers/pandora2d_peer.py --check
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import sys
import tempfile
import time
import warnings

import cv2
import numpy as np

from promptmid.config import EngineConfig
from promptmid.errors import RegistrationError
from promptmid.geometry.fit import FitConfig, apply_h, fit_transform
from promptmid.io.normalize import normalize_sar, optical_to_gray
from promptmid.io.rasters import downsample
from promptmid.registration import PairMatch

NODATA = -9999
COARSE_SIDE = 128  # pass 1 image side (px)
COARSE_WINDOW = 31  # pass 1 window (px at 128 px: a quarter of the side; 15 found half as many right disparities)
FINE_RANGE = 4  # pass 2 residual range (px of the work grid)
FINE_POINTS = 32  # pass 2 grid points per side (step = side / 32: 8 px on a 256 px tile, 16 on 512)


def _write(path: str, img: np.ndarray, valid: np.ndarray) -> None:
    import rasterio

    a = np.where(valid, img, NODATA).astype(np.float32)
    with rasterio.open(path, "w", driver="GTiff", width=a.shape[1], height=a.shape[0], count=1, dtype="float32",
                       nodata=NODATA) as ds:
        ds.write(a, 1)


def max_disparity(search, h: int, w: int) -> float:
    """The largest displacement (px of an h x w grid) of an image corner under the engine's own search
    bounds (``cfg.search``: rotation, scale range, shift), so the peer searches what the engine searches."""
    corner = math.hypot((w - 1) / 2.0, (h - 1) / 2.0)
    a = math.radians(search.max_rotation_deg)
    worst = max(abs(s * complex(math.cos(a), math.sin(a)) - 1) for s in search.scale_range)
    return corner * worst + (search.max_shift_px or 0.0)  # max_shift_px: a radius, work px


def pandora2d_match(left, left_valid, right, right_valid, *, cost: str, rng: int, step: int, window: int,
                    refine: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One Pandora2D run (left = reference). Returns (points (N, 2) x/y on the left grid, disparities (N, 2)
    dx/dy such that left(p) ~ right(p + d), scores (N,)); only points with a disparity inside the range."""
    import pandora2d
    from pandora import import_plugin
    from pandora2d.check_configuration import check_conf
    from pandora2d.state_machine import Pandora2DMachine

    import_plugin()
    with tempfile.TemporaryDirectory(prefix="pandora2d-") as d:
        _write(f"{d}/left.tif", left, left_valid)
        _write(f"{d}/right.tif", right, right_valid)
        pipeline = {
            "matching_cost": {"matching_cost_method": cost, "window_size": window, "step": [step, step],
                              "subpix": 1},
            "disparity": {"disparity_method": "wta", "invalid_disparity": "NaN"},
        }
        if refine:
            # Dichotomy on the resampled image (not the cost surface, which subpix 1 would alias): 1/16 px.
            # subpix 2/4 was 2-10x slower and no closer on a known shift; optical_flow minutes per pair.
            pipeline["refinement"] = {"refinement_method": "dichotomy", "iterations": 4, "filter": {"method": "bicubic"},
                                      "resampling_type": "image"}
        cfg = {
            "input": {"left": {"img": f"{d}/left.tif", "nodata": NODATA}, "right": {"img": f"{d}/right.tif", "nodata": NODATA},
                      "row_disparity": {"init": 0, "range": int(rng)}, "col_disparity": {"init": 0, "range": int(rng)}},
            "pipeline": pipeline,
            "output": {"path": f"{d}/out"},
        }
        machine = Pandora2DMachine()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            check_conf(cfg, machine)
            ds, _ = pandora2d.run_pandora2d(machine, cfg)
    dy, dx = ds["row_map"].values.astype(np.float64), ds["col_map"].values.astype(np.float64)
    score = ds["correlation_score"].values.astype(np.float64)
    gy, gx = np.meshgrid(ds["row"].values, ds["col"].values, indexing="ij")
    ok = np.isfinite(dx) & np.isfinite(dy) & np.isfinite(score)
    ok &= (np.abs(dx) < rng - 0.01) & (np.abs(dy) < rng - 0.01)  # a winner on the range's edge: peak outside
    pts = np.column_stack([gx[ok], gy[ok]]).astype(np.float64)
    return pts, np.column_stack([dx[ok], dy[ok]]), score[ok]


class Pandora2DMatcher:
    """A :class:`promptmid.evaluation.protocol.PairMatcher` over Pandora2D (dense matching, two passes)."""

    def __init__(self, cost: str = "mutual_information", window: int = 31, fine_passes: int = 1) -> None:
        self.cost, self.window, self.fine_passes = cost, window, fine_passes
        self.name = "pandora2d" if cost == "mutual_information" else f"pandora2d-{cost}"
        self.min_inliers = EngineConfig().fit.min_inliers  # the engines' support bar (10); a dense grid has hundreds

    def __call__(self, optical, optical_valid, sar, sar_valid, sar_dtype, cfg: EngineConfig) -> PairMatch:
        t0 = time.perf_counter()
        (opt_d, opt_v), f_opt = downsample(optical, optical_valid, cfg.max_side)  # the engine's work grid
        (sar_d, sar_v), f_sar = downsample(sar, sar_valid, cfg.max_side)
        opt = optical_to_gray(opt_d, opt_v, cfg.optical_norm).astype(np.float32)
        sr = normalize_sar(sar_d[0], sar_v, sar_dtype, cfg.sar_norm).astype(np.float32)
        h, w = sr.shape
        if opt.shape != sr.shape:  # the protocol warps onto the SAR's canvas; a differing size is not ours to guess
            raise RegistrationError(f"Pandora2D peer: optical {opt.shape} and SAR {sr.shape} differ on the work grid")
        timings = {}

        # Pass 1: the whole pair at ~128 px, a range covering the protocol's warps, integer disparities.
        c = max(1.0, max(h, w) / COARSE_SIDE)
        size = (max(16, round(w / c)), max(16, round(h / c)))
        small = lambda a: cv2.resize(a, size, interpolation=cv2.INTER_AREA)  # noqa: E731
        small_v = lambda v: cv2.resize(v.astype(np.float32), size, interpolation=cv2.INTER_AREA) > 0.999  # noqa: E731
        rng1 = int(math.ceil(max_disparity(cfg.search, h, w) * max(size) / max(h, w)))
        win1 = min(COARSE_WINDOW, (min(size) // 4) | 1)
        p1, d1, _ = pandora2d_match(small(sr), small_v(sar_v), small(opt), small_v(opt_v), cost=self.cost, rng=rng1,
                                    step=8, window=win1, refine=False)
        timings["pass1"] = time.perf_counter() - t0
        fit1 = fit_transform(p1, p1 + d1, FitConfig(model="affine", threshold_px=1.5))
        if fit1 is None or fit1.n_inliers < 6:
            raise RegistrationError(f"Pandora2D pass 1 ({size[0]} px, range {rng1}): no affine through "
                                    f"{len(p1)} grid disparities ({0 if fit1 is None else fit1.n_inliers} consistent)")
        fx, fy = w / size[0], h / size[1]  # pass-1 pixel-index coords -> work grid (x' = (x + 0.5) f - 0.5)
        up = np.array([[fx, 0, 0.5 * fx - 0.5], [0, fy, 0.5 * fy - 0.5], [0, 0, 1.0]])

        # Pass 2 (``fine_passes`` times; a second one moved no test pair's error by more than 0.7 px): optical resampled onto the SAR grid through the current
        # affine, residual disparities with sub-pixel refinement, mapped back through it, a new affine.
        a = up @ fit1.matrix @ np.linalg.inv(up)  # SAR -> optical on the work grid
        step2 = max(4, max(h, w) // FINE_POINTS)
        win2 = min(self.window, (min(h, w) // 4) | 1)
        for k in range(self.fine_passes):
            opt_rs = cv2.warpAffine(opt, a[:2], (w, h), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP, borderValue=0)
            opt_rs_v = cv2.warpAffine(opt_v.astype(np.uint8), a[:2], (w, h), flags=cv2.INTER_NEAREST | cv2.WARP_INVERSE_MAP) > 0
            p2, d2, s2 = pandora2d_match(sr, sar_v, opt_rs, opt_rs_v, cost=self.cost, rng=FINE_RANGE, step=step2,
                                         window=win2, refine=True)
            p_opt = apply_h(a, p2 + d2)
            last = k == self.fine_passes - 1
            fit = fit_transform(p2, p_opt, cfg.fit if last else FitConfig(model="affine", threshold_px=1.5))
            if fit is None:
                raise RegistrationError(f"Pandora2D pass {k + 2}: no transform through {len(p2)} grid disparities")
            a = fit.matrix
        timings["pass2"] = time.perf_counter() - t0 - timings["pass1"]
        idx = np.arange(len(p2))
        pm = PairMatch(p_opt, p2, np.column_stack([idx, idx]), s2.astype(np.float32), fit, timings=timings)
        return pm.rescaled(f_opt, f_sar)  # points back in native pixels


def self_check(image: str) -> str:
    """The adapter's conventions on a real optical image against itself shifted by (+6.5, -3) px: the shift
    at the image centre must come back to < 0.5 px; exits otherwise."""
    from promptmid.io.rasters import read_pixels

    if not os.path.isfile(image):
        return f"self-check skipped ({image} not found)"
    img, valid, _ = read_pixels(image, max_side=512)
    h, w = valid.shape
    shifted = np.stack([cv2.warpAffine(b, np.float32([[1, 0, 6.5], [0, 1, -3]]), (w, h)) for b in img])
    shifted_v = cv2.warpAffine(valid.astype(np.uint8), np.float32([[1, 0, 6.5], [0, 1, -3]]), (w, h)) > 0
    t0 = time.perf_counter()
    pm = Pandora2DMatcher()(shifted, shifted_v, img[:1], valid, "Byte", EngineConfig())
    c = np.array([[(w - 1) / 2.0, (h - 1) / 2.0]])
    got = (apply_h(pm.fit.matrix, c) - c)[0]
    if np.abs(got - [6.5, -3.0]).max() > 0.5:  # a sign or axis slip would be off by several px
        raise SystemExit(f"[peers] Pandora2D self-check failed: shift {got}, expected (6.5, -3)")
    return (f"recovers a (6.5, -3) px shift: ({got[0]:.2f}, {got[1]:.2f}) from {pm.n_inliers} grid points "
            f"in {time.perf_counter() - t0:.1f} s")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("pairs_dir", nargs="?")
    ap.add_argument("--cost", choices=("mutual_information", "zncc"), default="mutual_information")
    ap.add_argument("--fine-passes", type=int, default=1, help="pass 2 repeated (2 changed no pair's error by > 0.7 px)")
    ap.add_argument("--protocol", choices=("paper", "georef"), default="paper")
    ap.add_argument("--json")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--limit", type=int)
    ap.add_argument("--check-image", default="../shared/data/optical-sar/test/s1s2_163/optical.tif")
    ap.add_argument("--check", action="store_true", help="import Pandora2D, check the adapter on a synthetic shift, exit")
    args = ap.parse_args(argv)
    logging.getLogger().setLevel(logging.ERROR)  # Pandora2D logs every step at INFO/WARNING
    from importlib.metadata import version

    import rasterio

    if args.check:
        print(f"[peers] ok: pandora2d {version('pandora2d')} (rasterio {rasterio.__version__}, its GDAL "
              f"{rasterio.__gdal_version__}); {self_check(args.check_image)}")
        return 0
    if not args.pairs_dir or not args.json:
        ap.error("pairs_dir and --json are required")
    from promptmid.evaluation.protocol import ProtocolConfig, evaluate_to_json

    pcfg = ProtocolConfig.named(args.protocol, args.seed)
    log = lambda r: print(f"  {r.pair_id}: ncm {r.ncm}, reg. err. {r.fit_err_px:.2f} px, {r.seconds:.1f} s {r.error}", flush=True)  # noqa: E731
    s = evaluate_to_json(args.pairs_dir, Pandora2DMatcher(args.cost, fine_passes=args.fine_passes), EngineConfig(), pcfg,
                         args.json, args.limit, log)
    print(f"{s.engine}: SR {s.sr:.1f} %, median registration error {s.reg_err_median_px:.2f} px, {s.sec_per_pair:.2f} s/pair")
    return 0


if __name__ == "__main__":
    sys.exit(main())
