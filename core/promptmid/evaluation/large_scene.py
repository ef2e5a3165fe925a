"""Large-scene benchmark data: a mosaic of real co-registered pairs with a known georeference error.

Real optical/SAR tiles (e.g. the 1024 px Sentinel-1/2 pairs) are laid out on an n x n grid (each pair
used up to four times, rotated by 90 degree steps, so neighbours differ) into one optical and one SAR
GeoTIFF with overviews, as a delivered scene would be. Both share pixel positions, so the SAR's true
georeference is the optical's; the SAR file is given a *claimed* georeference that is off by a known
similarity (shift, rotation, scale about the scene centre). Registering the SAR must undo it: the error
is the distance, on a grid of check pixels, between where the output GCP model puts a SAR pixel and
where it truly is. The tiles carry their own residual misalignment (a few px locally for Sentinel-1
GRD over relief), which floors what any method can reach.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass

import numpy as np
from osgeo import gdal, osr

from ..geometry.gcps import gcps_from_points_file
from ..geometry.warp import warp_model
from ..io.rasters import Grid, open_raster, pixel_grid, raster_info
from .protocol import list_pairs

gdal.UseExceptions()


@dataclass
class Misregistration:
    """Error of the SAR's claimed georeference, as a pixel-space similarity about the scene centre."""

    dx_px: float = 40.3
    dy_px: float = -25.7
    rotation_deg: float = 0.25
    scale: float = 1.002

    def matrix(self, width: int, height: int) -> np.ndarray:
        """3x3: claimed pixel -> true pixel."""
        a = math.radians(self.rotation_deg)
        c, s = self.scale * math.cos(a), self.scale * math.sin(a)
        cx, cy = width / 2.0, height / 2.0
        return np.array([[c, -s, cx - c * cx + s * cy + self.dx_px], [s, c, cy - s * cx - c * cy + self.dy_px], [0, 0, 1.0]])


def _size(path: str) -> tuple[int, int]:
    ds = open_raster(path)
    return ds.RasterXSize, ds.RasterYSize


def _geotransform_of(gt: tuple, m: np.ndarray) -> tuple:
    """Geotransform of ``gt`` composed after the pixel-space affine ``m`` (map = gt(m(pixel)))."""
    g = np.array([[gt[1], gt[2], gt[0]], [gt[4], gt[5], gt[3]], [0, 0, 1.0]]) @ m
    return (g[0, 2], g[0, 0], g[0, 1], g[1, 2], g[1, 0], g[1, 1])


def build_mosaic(pairs_dir: str, out_dir: str, n: int = 8, tile: int = 1024, mis: Misregistration | None = None,
                 prefix: str = "s1s2") -> dict:
    """Write ``optical.tif``, ``sar.tif`` (claimed georeference) and ``truth.json`` into ``out_dir``.

    Pairs are taken in sorted order from ``pairs_dir`` (ids starting with ``prefix``, at least ``tile``
    pixels). Memory stays at one tile: each is written into the open files at its offset.
    """
    mis = mis or Misregistration()
    ids = [p for p in list_pairs(pairs_dir) if p.startswith(prefix)]
    ids = [p for p in ids if min(_size(os.path.join(pairs_dir, p, "sar.tif"))) >= tile]
    if len(ids) * 4 < n * n:
        raise ValueError(f"{len(ids)} pairs of >= {tile} px under {pairs_dir}: not enough for a {n} x {n} mosaic")
    os.makedirs(out_dir, exist_ok=True)
    side = n * tile
    srs = osr.SpatialReference()
    srs.ImportFromEPSG(32633)
    gt = (500000.0, 10.0, 0.0, 4600000.0, 0.0, -10.0)
    opts = ["TILED=YES", "BLOCKXSIZE=256", "BLOCKYSIZE=256", "BIGTIFF=IF_SAFER"]
    drv = gdal.GetDriverByName("GTiff")
    opt_path, sar_path = os.path.join(out_dir, "optical.tif"), os.path.join(out_dir, "sar.tif")
    opt_ds = drv.Create(opt_path, side, side, 3, gdal.GDT_Byte, opts)
    sar_ds = drv.Create(sar_path, side, side, 1, gdal.GDT_Byte, opts)
    claimed = _geotransform_of(gt, np.linalg.inv(mis.matrix(side, side)))
    for ds, g in ((opt_ds, gt), (sar_ds, claimed)):
        ds.SetGeoTransform(g)
        ds.SetProjection(srs.ExportToWkt())
    layout = []
    for idx in range(n * n):
        pid, k = ids[idx % len(ids)], (idx // len(ids)) % 4
        r, c = divmod(idx, n)
        for name, ds in (("optical.tif", opt_ds), ("sar.tif", sar_ds)):
            src = open_raster(os.path.join(pairs_dir, pid, name))
            for b in range(ds.RasterCount):
                a = src.GetRasterBand(min(b + 1, src.RasterCount)).ReadAsArray(0, 0, tile, tile)
                ds.GetRasterBand(b + 1).WriteArray(np.ascontiguousarray(np.rot90(a, k)), c * tile, r * tile)
        layout.append({"row": r, "col": c, "pair": pid, "rot90": k})
    for ds in (opt_ds, sar_ds):
        ds.BuildOverviews("AVERAGE", [2, 4, 8, 16])
        ds.FlushCache()
    opt_ds = sar_ds = None
    truth = {"optical": opt_path, "sar": sar_path, "size": side, "true_geotransform": list(gt),
             "claimed_geotransform": list(claimed), "misregistration": asdict(mis), "tiles": layout}
    with open(os.path.join(out_dir, "truth.json"), "w", encoding="utf-8") as fh:
        json.dump(truth, fh, indent=1)
    return truth


def registration_errors(truth: dict, points_path: str | None, transform: str = "affine", grid: int = 25,
                        points_source: str = "pixel") -> np.ndarray:
    """Distances (optical px) between the GCP model's and the true map position of check pixels spread
    over the scene (10 % margin). ``points_path`` None scores the claimed georeference (the error before)."""
    size, gt_true = truth["size"], truth["true_geotransform"]
    t = np.linspace(0.1 * size, 0.9 * size, grid)
    p, l = (a.ravel() for a in np.meshgrid(t, t))
    true_x, true_y = Grid(tuple(gt_true), size, size, "").pixel_to_map(p, l)
    if points_path is None:
        est_x, est_y = Grid(tuple(truth["claimed_geotransform"]), size, size, "").pixel_to_map(p, l)
    else:
        gt = tuple(truth["claimed_geotransform"]) if points_source == "layer" else None
        optical = raster_info(truth["optical"])
        plane = pixel_grid(optical)
        # What warping with the written GCPs does (for a similarity, through its exact GCPs).
        est = warp_model(gcps_from_points_file(points_path, gt), transform, raster_info(truth["sar"]), plane)(p, l)
        est_x, est_y = est[:, 0], est[:, 1]
    return np.hypot(est_x - true_x, est_y - true_y) / abs(gt_true[1])
