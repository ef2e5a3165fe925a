"""Large scenes: refine a coarse registration by matching full-resolution tiles, then merge their GCPs.

The coarse stage (``pipeline.register``) matches the whole overlap on a work grid of at most
``max_side`` pixels; on a 10 000-pixel scene one work pixel is 20 ground pixels, so its GCPs are only
good to a few ground pixels. Here the optical grid is cut into windows at (or near) native resolution;
each window of the SAR is resampled *through the coarse GCPs* onto the optical window, so what is left
to find per tile is a small residual, and matched like a small pair. Tile inliers go back to SAR source
pixels through the same GCP transformer GDAL warped with, and a robust fit over all tiles rejects
tiles that locked onto the wrong structure. Memory is bounded by the tile size: GDAL reads only the
blocks (or overview levels) a window needs, and its block cache is capped while tiling.
"""

from __future__ import annotations

import contextlib
import math
import os
from dataclasses import dataclass, replace
from typing import Iterator, Optional

import numpy as np
from osgeo import gdal

from .config import EngineConfig, TilingConfig
from .descriptors.base import Describer
from .errors import CancelledError, PromptMIDError
from .geometry.fit import FitConfig, fit_transform
from .geometry.gcps import GCPSet
from .io.rasters import Grid, RasterInfo, open_raster, read_on_grid, warp_onto_grid, work_grid
from .progress import Progress
from .registration import prepare_and_match
from .search import georef_search
from .verdict import Verdict


@dataclass
class TiledResult:
    gcps: GCPSet
    tiles_tried: int
    tiles_used: int
    n_matches: int
    tiles_registered: int = 0  # tiles whose own verdict was registered and whose GCPs survived the merge


def wants_tiling(coarse: Grid, fine: Grid, cfg: TilingConfig) -> bool:
    if cfg.mode == "off":
        return False
    if cfg.mode == "on":
        return True
    if cfg.mode != "auto":
        raise ValueError(f"tiling mode '{cfg.mode}' (auto, on or off)")
    return coarse.geotransform[1] / fine.geotransform[1] > cfg.auto_factor


def fine_grid(optical: RasterInfo, sar: RasterInfo, cfg: TilingConfig) -> Grid:
    """The optical grid over the overlap at native resolution (or ``fine_factor`` times coarser)."""
    native = work_grid(optical, sar, max_side=10**9)
    if cfg.fine_factor <= 1.0:
        return native
    return work_grid(optical, sar, max_side=max(1, math.ceil(max(native.width, native.height) / cfg.fine_factor)))


def tile_windows(width: int, height: int, cfg: TilingConfig) -> list[tuple[int, int, int, int]]:
    """(col, row, w, h) windows of side ``tile`` over the grid: all of them if they fit in ``max_tiles``,
    else an evenly spread sub-grid (same count along each axis in proportion to the sides)."""
    t = cfg.tile
    nx, ny = max(1, math.ceil(width / t)), max(1, math.ceil(height / t))
    if nx * ny > cfg.max_tiles:
        scale = math.sqrt(cfg.max_tiles / (nx * ny))
        nx, ny = max(1, min(nx, int(nx * scale))), max(1, min(ny, int(ny * scale)))
    xs = np.linspace(0, max(width - t, 0), nx).round().astype(int)
    ys = np.linspace(0, max(height - t, 0), ny).round().astype(int)
    return [(int(x), int(y), min(t, width), min(t, height)) for y in ys for x in xs]


def sub_grid(grid: Grid, col: int, row: int, w: int, h: int) -> Grid:
    gt = grid.geotransform
    return Grid((gt[0] + col * gt[1], gt[1], 0.0, gt[3] + row * gt[5], 0.0, gt[5]), w, h, grid.crs_wkt)


@contextlib.contextmanager
def gdal_cache_limit(mb: int) -> Iterator[None]:
    old = gdal.GetCacheMax()
    gdal.SetCacheMax(int(mb) * 1024 * 1024)
    try:
        yield
    finally:
        gdal.SetCacheMax(old)


class CoarseModel:
    """The SAR seen through the coarse GCPs: a GCP VRT to resample windows from, and the same GDAL GCP
    transformer (polynomial order 1) to take matched positions back to SAR source pixels."""

    def __init__(self, sar: RasterInfo, gcps: GCPSet) -> None:
        self._src = open_raster(sar.path)
        self.vrt = gdal.Translate("", self._src, format="VRT", bandList=[1], GCPs=gcps.to_gdal(), outputSRS=gcps.crs_wkt)
        self._tr = gdal.Transformer(self.vrt, None, ["METHOD=GCP_POLYNOMIAL", "MAX_GCP_ORDER=1"])

    def map_to_source(self, mx: np.ndarray, my: np.ndarray) -> np.ndarray:
        pts, ok = self._tr.TransformPoints(1, np.column_stack([mx, my]).astype(float).tolist())
        out = np.asarray(pts, float)[:, :2]
        out[~np.asarray(ok, bool)] = np.nan
        return out


def refine_tiled(
    optical: RasterInfo,
    sar: RasterInfo,
    coarse_gcps: GCPSet,
    fine: Grid,
    describer: Describer,
    cfg: EngineConfig,
    progress: Optional[Progress] = None,
) -> TiledResult:
    """Match full-resolution tiles around the coarse solution; returns the merged, outlier-free GCPs."""
    progress = progress or Progress()
    tcfg = cfg.tiling
    windows = tile_windows(fine.width, fine.height, tcfg)
    model = CoarseModel(sar, coarse_gcps)
    # Descriptor matches add little where the coarse GCPs already place each tile to a few pixels, and cost
    # most of a tile's time: dense templates alone unless asked for.
    tile_describer = describer if tcfg.tile_descriptors else None
    # Tiles are matched as they are read, each already placed through the coarse GCPs: a small search.
    tile_cfg = replace(cfg, max_side=max(tcfg.tile, cfg.max_side), search=georef_search(cfg.search))
    resampling = "bilinear" if tcfg.fine_factor <= 1.0 else "average"
    pix, lin, mxs, mys, sims = [], [], [], [], []
    claimed: list[bool] = []
    tile_of: list[np.ndarray] = []
    used = n_matches = 0
    with gdal_cache_limit(tcfg.cache_mb):
        for i, (c, r, w, h) in enumerate(windows):
            progress.report(i / len(windows), f"tile {i + 1}/{len(windows)}")
            g = sub_grid(fine, c, r, w, h)
            opt, opt_valid = read_on_grid(optical.path, g, bands=optical.matching_bands, resampling=resampling)
            s, s_valid = warp_onto_grid(model.vrt, g, os.path.basename(sar.path), resampling=resampling, polynomial_order=1)
            if min(opt_valid.mean(), s_valid.mean()) < tcfg.min_valid_fraction:
                continue
            try:
                pm = prepare_and_match(opt, opt_valid, s, s_valid, sar.dtype, tile_describer, tile_cfg)
            except CancelledError:
                raise
            except PromptMIDError:  # a featureless tile (water, constant) is skipped, not fatal
                continue
            n_matches += len(pm.matches)
            if pm.n_inliers < tcfg.min_tile_inliers or (pm.verdict is not None and pm.verdict.verdict == "failed"):
                continue
            used += 1
            claimed.append(pm.verdict is not None and pm.verdict.registered)
            tile_of.append(np.full(pm.n_inliers, len(claimed) - 1))
            p_opt, p_sar = pm.points(inliers_only=True)
            ox, oy = g.pixel_to_map(p_opt[:, 0] + 0.5, p_opt[:, 1] + 0.5)
            sx, sy = g.pixel_to_map(p_sar[:, 0] + 0.5, p_sar[:, 1] + 0.5)
            src = model.map_to_source(sx, sy)
            pix.append(src[:, 0]); lin.append(src[:, 1]); mxs.append(ox); mys.append(oy)
            sims.append(pm.similarity[pm.inlier_mask])
    progress.report(1.0, f"{used} of {len(windows)} tiles matched")
    if not pix:
        return TiledResult(GCPSet(*(np.zeros(0),) * 5, coarse_gcps.crs_wkt), len(windows), 0, n_matches)
    gcps = GCPSet(np.concatenate(pix), np.concatenate(lin), np.concatenate(mxs), np.concatenate(mys),
                  np.concatenate(sims), coarse_gcps.crs_wkt)
    finite = np.flatnonzero(np.isfinite(gcps.pixel) & np.isfinite(gcps.line))
    gcps, tile = gcps.subset(finite), np.concatenate(tile_of)[finite]
    keep = _merge_inliers(gcps, fine, tcfg)
    confirmed = {int(t) for t in np.unique(tile[keep]) if claimed[int(t)]}
    return TiledResult(gcps.subset(keep), len(windows), used, n_matches, len(confirmed))


def tiled_verdict(coarse: Verdict, tiles: TiledResult, cfg: TilingConfig) -> Verdict:
    """The verdict of a large scene: the coarse grid's, unless enough full-resolution tiles, each registered
    on its own, agree on one transform (the merge keeps only tiles consistent with it): independent
    confirmations in different parts of the scene are stronger evidence than the coarse match."""
    if coarse.verdict == "failed" or tiles.tiles_registered < cfg.min_confirming_tiles:
        return coarse
    return Verdict("registered", max(coarse.confidence, 0.5),
                   "", coarse.evidence)


def _merge_inliers(gcps: GCPSet, fine: Grid, tcfg: TilingConfig) -> np.ndarray:
    """Indices of the GCPs consistent with one robust affine over all tiles (threshold in fine-grid px)."""
    if len(gcps) < 4:
        return np.arange(len(gcps))
    col, row = fine.map_to_pixel(gcps.map_x, gcps.map_y)
    fit = fit_transform(np.column_stack([gcps.pixel, gcps.line]), np.column_stack([col, row]),
                        FitConfig("affine", tcfg.merge_threshold_px))
    return np.arange(len(gcps)) if fit is None else np.flatnonzero(fit.inliers)
