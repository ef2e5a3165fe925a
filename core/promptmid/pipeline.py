"""File-level registration: two rasters in, GCPs + tie-point layers + warped SAR GeoTIFF out.

The SAR raster is matched against the optical (reference) raster on a shared *work grid* (the optical
grid over the overlap, coarsened to ``max_side``). A georeferenced SAR is first resampled onto that grid
with its own georeference, so matching only has to recover the residual misregistration; a SAR with no
georeference is matched in its own (downsampled) pixel grid. Scenes much larger than the work grid are
then refined tile by tile at full resolution around that coarse solution (``tiling.py``).
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import time
from dataclasses import asdict, dataclass, field, replace
from typing import Optional

import numpy as np

from .config import EngineConfig, OutputConfig, WARP_TRANSFORMS
from .descriptors.base import Describer
from .descriptors.registry import get_describer
from .errors import InputError, RegistrationError, UncertainError
from .geometry.fit import expected_error
from .geometry.gcps import (GCPSet, gcps_from_points_file, polynomial_residuals, spread_subset, write_points_file,
                            write_tiepoints_gpkg)
from .geometry.quality import fallback_transform, transform_warnings
from .geometry.similarity import fit_similarity, placed, placement_is_affine, similarity_residuals
from .geometry.warp import warp_model, warp_with_gcps
from .io.atomic import atomic_path, ensure_writable_dir
from .io.rasters import (Grid, RasterInfo, Scale, map_to_pixel, pixel_grid, pixel_to_map, raster_info, read_on_grid, read_pixels,
                         transform_points, work_grid)
from .progress import Progress
from .jsonutil import json_safe
from .registration import PairMatch, prepare_and_match
from .search import georef_search
from .verdict import consistent_text, corners_and_centre
from .tiling import fine_grid, refine_tiled, tiled_verdict, wants_tiling


@dataclass
class RegistrationResult:
    engine: str
    transform: str
    n_keypoints_optical: int
    n_keypoints_sar: int
    n_matches: int
    n_inliers: int
    n_gcps: int
    rmse_px: float  # GCP residual RMSE of the warp model, SAR source pixels
    rmse_map: float  # same, optical map units
    seconds: float
    crs_wkt: str
    outputs: dict[str, str] = field(default_factory=dict)  # kind -> path: warped, points, tiepoints, report
    tiles_tried: int = 0  # large scenes: full-resolution tiles matched around the coarse solution
    tiles_used: int = 0
    verdict: str = "registered"  # registered | uncertain (failed raises RegistrationError)
    confidence: float = 0.0
    verdict_reason: str = ""  # why not registered, one line
    expected_error_px: float = math.inf  # expected error of the fitted transform, optical pixels (1 sigma, worst of corners/centre)
    warnings: list[str] = field(default_factory=list)  # e.g. a transform replaced by affine, extrapolated areas
    sar_band: str = "1"
    points_source: str = "pixel"  # convention of the .points source columns: "layer" or "pixel"
    rmse_kind: str = "fit"  # "fit" residuals, or "leave-one-out" (TPS passes through its GCPs)
    evidence: dict = field(default_factory=dict)  # what the verdict rests on (Evidence.as_dict)

    def summary(self) -> str:
        tiles = f", {self.tiles_used}/{self.tiles_tried} tiles" if self.tiles_tried else ""
        head = "registered" if self.verdict == "registered" else f"UNCERTAIN ({self.verdict_reason})"
        notes = "".join(f" WARNING: {w}" for w in self.warnings)
        return (f"{head}: {self.tie_points_text()}{tiles}, {self.n_gcps} GCPs, "
                f"expected error {self.expected_error_px:.2f} px, tie-point scatter (GCP RMSE) {self.rmse_px:.2f} px "
                f"({self.rmse_map:.2f} map units), {self.transform}, {self.seconds:.1f} s.{notes}")

    def tie_points_text(self) -> str:
        """The tie-point count a user should read: the verdict's (the pass searched around the global pose).
        The refined pass is searched within a few px of the first fit, so nearly all its points agree with
        the final fit by construction ("1565 of 1565"), which says nothing about the registration."""
        if self.evidence.get("n_tie_points"):
            return consistent_text(self.evidence["n_inliers"], self.evidence["n_tie_points"])
        return f"{self.n_inliers} inliers of {self.n_matches} tie points"


def output_paths(sar_path: str, out_dir: str) -> dict[str, str]:
    stem = os.path.splitext(os.path.basename(sar_path))[0]
    return {
        "warped": os.path.join(out_dir, f"{stem}_registered.tif"),
        "points": os.path.join(out_dir, f"{stem}_registered.points"),
        "tiepoints": os.path.join(out_dir, f"{stem}_tiepoints.gpkg"),
        "report": os.path.join(out_dir, f"{stem}_report.json"),
    }


def _check_inputs(optical: RasterInfo, sar: RasterInfo, outputs: dict[str, str]) -> None:
    if os.path.realpath(optical.path) == os.path.realpath(sar.path):
        raise InputError("The optical and SAR inputs are the same file: pick two different rasters.")
    inputs = {os.path.realpath(optical.path), os.path.realpath(sar.path)}
    for p in outputs.values():
        if os.path.realpath(p) in inputs:
            raise InputError(f"Output {p} would overwrite an input raster: choose another output folder.")
    for info in (optical, sar):
        if min(info.width, info.height) < 64:
            raise InputError(f"{os.path.basename(info.path)} is {info.width} x {info.height} pixels: too small to match (at least 64 x 64).")


def sar_bands_of(sar: RasterInfo, choice: str) -> list[int]:
    """Bands to read for ``--sar-band``: one band number, or all of them for "mean"."""
    if choice == "mean":
        return list(range(1, sar.bands + 1))
    try:
        band = int(choice)
    except ValueError:
        raise InputError(f"SAR band '{choice}': give a band number (1..{sar.bands}) or 'mean'.") from None
    if not 1 <= band <= sar.bands:
        raise InputError(f"{os.path.basename(sar.path)} has {sar.bands} band(s): band {band} does not exist.")
    return [band]


def _read_sar(sar: RasterInfo, grid: Grid, max_side: int, band_choice: str) -> tuple[np.ndarray, np.ndarray, Scale]:
    bands = sar_bands_of(sar, band_choice)
    if sar.georeferenced:
        data, valid = read_on_grid(sar.path, grid, bands=bands)
        factor: Scale = (1.0, 1.0)
    else:
        data, valid, factor = read_pixels(sar.path, max_side=max_side, bands=bands)
    if len(bands) > 1:  # mean intensity of the polarisations / channels
        data = data.mean(axis=0, keepdims=True)
    return data, valid, factor


def _sar_source_pixels(sar: RasterInfo, grid: Grid, pts: np.ndarray, factor: Scale) -> np.ndarray:
    """SAR points in work coordinates (array index) -> GDAL pixel/line of the SAR file."""
    if not sar.georeferenced:
        return (pts + 0.5) * np.asarray(factor, float)
    mx, my = grid.pixel_to_map(pts[:, 0] + 0.5, pts[:, 1] + 0.5)
    sx, sy = transform_points(mx, my, grid.crs_wkt, sar.crs_wkt)
    return np.column_stack(map_to_pixel(sar, sx, sy))  # through its geotransform, GCPs or RPCs


def register(
    optical_path: str,
    sar_path: str,
    out_dir: str,
    cfg: Optional[EngineConfig] = None,
    out_cfg: Optional[OutputConfig] = None,
    progress: Optional[Progress] = None,
    describer: Optional[Describer] = None,
) -> RegistrationResult:
    """Register ``sar_path`` onto ``optical_path`` and write the outputs into ``out_dir``.

    Raises InputError / RegistrationError / OutputError / CancelledError with one-line messages. Inputs are
    never written; on any failure the outputs of this run are removed.
    """
    cfg = cfg or EngineConfig()
    out_cfg = out_cfg or OutputConfig()
    progress = progress or Progress()
    if out_cfg.transform not in WARP_TRANSFORMS:
        raise InputError(f"Unknown transform '{out_cfg.transform}' (use {', '.join(WARP_TRANSFORMS)}).")
    t_start = time.perf_counter()
    progress.report(0.0, "reading rasters")
    optical, sar = raster_info(optical_path), raster_info(sar_path)
    paths = output_paths(sar_path, out_dir)
    _check_inputs(optical, sar, paths)
    grid = work_grid(optical, sar, cfg.max_side)
    if cfg.land_use is None and cfg.land_cover:
        from .landcover import land_use_from_raster

        cfg = replace(cfg, land_use=land_use_from_raster(cfg.land_cover, grid, cfg.land_cover_legend))
        progress.report(0.02, f"land use from land cover: {cfg.land_use or 'unknown'}")
    opt_bands, opt_valid = read_on_grid(optical.path, grid, bands=optical.matching_bands)
    if not opt_valid.any():
        raise InputError(f"{os.path.basename(optical.path)} has only nodata where it overlaps the SAR raster.")
    sar_bands, sar_valid, sar_factor = _read_sar(sar, grid, cfg.max_side, cfg.sar_band)
    if not sar_valid.any():
        raise InputError(f"{os.path.basename(sar.path)} has only nodata where it overlaps the optical raster.")
    progress.report(0.1, "loading descriptor")
    describer = describer or get_describer(cfg.engine, model_dir=cfg.model_dir, weights=cfg.weights, device=cfg.device)
    # A georeferenced SAR is already placed: only the residual misregistration is searched.
    match_cfg = replace(cfg, search=georef_search(cfg.search)) if sar.georeferenced else cfg
    pm = prepare_and_match(opt_bands, opt_valid, sar_bands, sar_valid, sar.dtype, describer, match_cfg, progress.sub(0.1, 0.45))
    verdict = pm.verdict
    if verdict is None or verdict.verdict == "failed" or pm.n_inliers < cfg.fit.min_inliers:
        why = verdict.reason if verdict is not None else f"only {pm.n_inliers} reliable tie points"
        raise RegistrationError(f"Could not register: {why}. Check that the rasters overlap and show the same ground; "
                                "try another land-use class, a wider search (--max-rotation, --scale-range) or another engine.")
    gcps = _gcps_from_matches(pm, optical, sar, grid, sar_factor)
    n_matches, n_inliers, tiles = len(pm.matches), pm.n_inliers, None
    fine = fine_grid(optical, sar, cfg.tiling)
    if wants_tiling(grid, fine, cfg.tiling):
        tiles = refine_tiled(optical, sar, gcps, fine, describer, cfg, progress.sub(0.45, 0.8))
        if len(tiles.gcps) >= cfg.fit.min_inliers:
            gcps, n_matches, n_inliers = tiles.gcps, tiles.n_matches, len(tiles.gcps)
        else:  # keep the coarse solution: better a coarse registration than none
            progress.report(0.8, f"only {len(tiles.gcps)} tile GCPs: keeping the coarse solution")
        verdict = tiled_verdict(verdict, tiles, cfg.tiling)
    if verdict.verdict == "uncertain" and not cfg.accept_uncertain:
        ev = verdict.evidence  # the same key figures as a kept uncertain result's summary
        raise UncertainError(f"Uncertain registration, nothing written (confidence {verdict.confidence:.2f}; "
                             f"{consistent_text(ev.n_inliers, ev.n_tie_points)}): "
                             f"{verdict.reason}. Inspect the pair, try another "
                             "land-use class or engine, or rerun with --accept-uncertain to keep the result with a warning.")
    gcps = spread_subset(gcps, out_cfg.max_gcps)
    overlap_at = corners_and_centre(sar_valid.shape, sar_valid)  # work px: where the expected error is judged
    # poly2 / TPS only where the tie points support them; warnings say where the warp extrapolates.
    transform, why = fallback_transform(gcps, out_cfg.transform)
    warnings = [why] if why else []
    plane = pixel_grid(optical)  # the optical pixel plane: where the similarity is fitted and the output lies
    if transform == "similarity":
        dx, dy, res_map = similarity_residuals(gcps, sar, plane)
    else:  # TPS: leave-one-out residuals (it passes through its GCPs)
        dx, dy, res_map = polynomial_residuals(gcps, transform)
    g = grid.geotransform
    warnings += transform_warnings(gcps, transform, (g[0], g[3] + grid.height * g[5], g[0] + grid.width * g[1], g[3]))
    if transform == "similarity" and not placement_is_affine(sar, plane):
        # QGIS's Helmert would fit a similarity in the SAR's own coordinates (another CRS, GCPs or RPCs), not ours
        warnings.append("The similarity holds on the optical grid, after the SAR's own placement (another CRS, GCPs or "
                        "RPCs): in the QGIS Georeferencer load the .points with Polynomial 1 or thin-plate spline, not "
                        "Helmert; the warped raster is the reference.")
    res_px = np.hypot(dx, dy)

    ensure_writable_dir(out_dir)
    written: list[str] = []
    try:
        progress.report(0.82, "writing GCPs")
        points_source = write_points_file(paths["points"], gcps, dx, dy, out_cfg.qgis_points_source, sar.geotransform)
        written.append(paths["points"])
        sar_mx = sar_my = None
        if sar.georeferenced:
            sx, sy = pixel_to_map(sar, gcps.pixel, gcps.line)
            sar_mx, sar_my = transform_points(sx, sy, sar.crs_wkt, optical.crs_wkt)
        write_tiepoints_gpkg(paths["tiepoints"], gcps, res_px, res_map, sar_mx, sar_my)
        written.append(paths["tiepoints"])
        progress.report(0.88, f"warping SAR ({transform})")
        target = plane if out_cfg.output_grid == "optical" else None
        warp_with_gcps(sar.path, paths["warped"], gcps, transform, out_cfg.resampling, target, plane)
        written.append(paths["warped"])
        result = RegistrationResult(
            engine=describer.name, transform=transform,
            n_keypoints_optical=len(pm.kp_optical), n_keypoints_sar=len(pm.kp_sar),
            n_matches=n_matches, n_inliers=n_inliers, n_gcps=len(gcps),
            rmse_px=float(np.sqrt(np.mean(res_px ** 2))), rmse_map=float(np.sqrt(np.mean(res_map ** 2))),
            seconds=time.perf_counter() - t_start, crs_wkt=optical.crs_wkt, outputs=paths,
            tiles_tried=tiles.tiles_tried if tiles else 0, tiles_used=tiles.tiles_used if tiles else 0,
            verdict=verdict.verdict, confidence=verdict.confidence, verdict_reason=verdict.reason,
            expected_error_px=_expected_error(gcps, plane, sar, _sar_source_pixels(sar, grid, overlap_at, sar_factor),
                                              transform),
            sar_band=cfg.sar_band, warnings=warnings, points_source=points_source,
            rmse_kind="leave-one-out" if transform == "tps" else "fit", evidence=verdict.evidence.as_dict(),
        )
        with atomic_path(paths["report"]) as tmp:
            with open(tmp, "w", encoding="utf-8") as fh:
                report = {k: v for k, v in asdict(result).items() if k != "crs_wkt"}
                report.update(optical=os.path.abspath(optical.path), sar=os.path.abspath(sar.path),
                              land_use=cfg.land_use, timings=pm.timings,
                              accepted_uncertain=verdict.verdict == "uncertain",
                              sar_band_meaning="mean of all bands" if cfg.sar_band == "mean" else f"band {cfg.sar_band}",
                              search=asdict(pm.search.best) if pm.search is not None and pm.search.best else None)
                report = json_safe(report)
                json.dump(report, fh, indent=2)
        written.append(paths["report"])
    except BaseException:
        for p in written:
            with contextlib.suppress(OSError):
                os.remove(p)
        raise
    progress.report(1.0, result.summary())
    return result


def written_gcps(result: RegistrationResult, sar_path: str) -> GCPSet:
    """The GCPs of a run read back from its .points file, whichever source convention it was written in."""
    gt = raster_info(sar_path).geotransform if result.points_source == "layer" else None
    return gcps_from_points_file(result.outputs["points"], gt)


def written_warp(result: RegistrationResult, optical_path: str, sar_path: str):
    """The written warp as a function: SAR source (pixel, line) arrays -> (N, 2) optical map positions,
    through the run's GCPs and transform exactly as the warped raster was made."""
    return warp_model(written_gcps(result, sar_path), result.transform, raster_info(sar_path),
                      pixel_grid(raster_info(optical_path)))


def _expected_error(gcps: GCPSet, plane: Grid, sar: RasterInfo, at_sar_px: np.ndarray, transform: str) -> float:
    """Expected error (optical pixels, 1 sigma, worst of the overlap's corners and centre) of the similarity
    (for that transform; in the optical pixel plane) or else of the affine through the final GCPs: the
    accuracy of the *transform*, not the scatter of its tie points. ``plane``: the optical pixel grid."""
    col, row = plane.map_to_pixel(gcps.map_x, gcps.map_y)
    dst = np.column_stack([col, row])
    if len(dst) < 4:
        return math.inf
    if transform == "similarity":
        src = placed(sar, plane, gcps.pixel, gcps.line)
        ok = np.all(np.isfinite(src), axis=1)
        at = placed(sar, plane, at_sar_px[:, 0], at_sar_px[:, 1])
        err = expected_error(src[ok], dst[ok], fit_similarity(gcps, sar, plane), at, "similarity")
        return float(np.nanmax(err)) if np.isfinite(err).any() else math.inf  # NaN: a corner the placement cannot reach
    src = np.column_stack([gcps.pixel, gcps.line])
    a, *_ = np.linalg.lstsq(np.column_stack([src, np.ones(len(src))]), dst, rcond=None)
    m = np.vstack([a.T, [0.0, 0.0, 1.0]])
    return float(np.max(expected_error(src, dst, m, at_sar_px)))


def _gcps_from_matches(pm: PairMatch, optical: RasterInfo, sar: RasterInfo, grid: Grid, sar_factor: Scale) -> GCPSet:
    p_opt, p_sar = pm.points(inliers_only=True)
    mx, my = grid.pixel_to_map(p_opt[:, 0] + 0.5, p_opt[:, 1] + 0.5)
    src = _sar_source_pixels(sar, grid, p_sar, sar_factor)
    sim = pm.similarity[pm.inlier_mask]
    ok = np.all(np.isfinite(src), axis=1)
    return GCPSet(src[ok, 0], src[ok, 1], mx[ok], my[ok], sim[ok], optical.crs_wkt)
