"""Reading rasters with GDAL: metadata, validation and resampling onto a shared work grid.

Conventions: arrays are (bands, rows, cols) float32; a *grid* is a north-up pixel grid given by a GDAL
geotransform (map x = gt[0] + (col) * gt[1], pixel corners, GDAL convention) plus a CRS in WKT.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np
from osgeo import gdal, osr

from ..errors import InputError

gdal.UseExceptions()
osr.UseExceptions()

GeoTransform = tuple[float, float, float, float, float, float]


@dataclass(frozen=True)
class RasterInfo:
    """What the engine needs to know about an input raster before reading pixels."""

    path: str
    width: int
    height: int
    bands: int
    dtype: str  # GDAL data type name, e.g. "Byte", "UInt16", "Float32"
    geotransform: Optional[GeoTransform]  # None when the file has no geotransform (no georeference, or GCPs/RPCs only)
    crs_wkt: str  # "" when the file has no CRS (for GCPs: the GCPs' CRS; for RPCs: WGS 84)
    nodata: Optional[float]  # nodata of band 1, if set
    georef_method: str = ""  # "gcps" (e.g. Sentinel-1 GRD as distributed), "rpc"; "" = the geotransform, if any

    @property
    def placement(self) -> str:
        """How the raster is placed: "geotransform", "gcps", "rpc" or "" (not at all)."""
        return self.georef_method or ("geotransform" if self.geotransform is not None else "")

    @property
    def matching_bands(self) -> list[int]:
        """Bands an optical raster is matched on: RGB of RGB(N), or what it has."""
        return list(range(1, min(self.bands, 3) + 1))

    @property
    def georeferenced(self) -> bool:
        """Placed on the ground by a geotransform, GCPs or RPCs (and a CRS)."""
        return bool(self.placement) and bool(self.crs_wkt)

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """(xmin, ymin, xmax, ymax) in the raster's CRS (over the corners; along the edges for GCPs/RPCs)."""
        if not self.georeferenced:
            raise InputError(f"{os.path.basename(self.path)} has no georeference.")
        t = np.linspace(0.0, 1.0, 2 if self.placement == "geotransform" else 21)
        w, h = self.width, self.height
        cols = np.concatenate([t * w, np.full_like(t, w), (1 - t) * w, np.zeros_like(t)])
        rows = np.concatenate([np.zeros_like(t), t * h, np.full_like(t, h), (1 - t) * h])
        xs, ys = pixel_to_map(self, cols, rows)
        ok = np.isfinite(xs) & np.isfinite(ys)
        return float(xs[ok].min()), float(ys[ok].min()), float(xs[ok].max()), float(ys[ok].max())


@dataclass(frozen=True)
class Grid:
    """A north-up pixel grid on which both images are resampled for matching."""

    geotransform: GeoTransform
    width: int
    height: int
    crs_wkt: str

    def pixel_to_map(self, cols: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Pixel coordinates (col, row; 0,0 = top-left corner of the first pixel) to map x, y."""
        gt = self.geotransform
        return gt[0] + cols * gt[1] + rows * gt[2], gt[3] + cols * gt[4] + rows * gt[5]

    def map_to_pixel(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        inv = gdal.InvGeoTransform(self.geotransform)
        return inv[0] + x * inv[1] + y * inv[2], inv[3] + x * inv[4] + y * inv[5]


def open_raster(path: str) -> gdal.Dataset:
    """Open a raster read-only, turning every GDAL failure into an InputError that names the file."""
    name = os.path.basename(str(path))
    if not os.path.exists(path):
        raise InputError(f"{name}: file not found ({path}).")
    try:
        ds = gdal.OpenEx(str(path), gdal.OF_RASTER | gdal.OF_READONLY)
    except RuntimeError as exc:
        raise InputError(f"{name}: not a readable raster ({str(exc).strip()}).") from None
    if ds is None or ds.RasterCount == 0:
        raise InputError(f"{name}: not a readable raster (no raster bands).")
    return ds


def pixel_grid(info: RasterInfo) -> Grid:
    """The raster's own pixel grid (it must have a geotransform)."""
    if info.geotransform is None:
        raise ValueError(f"{info.path} has no geotransform: no pixel grid of its own in map units")
    return Grid(tuple(info.geotransform), info.width, info.height, info.crs_wkt)


def raster_info(path: str) -> RasterInfo:
    ds = open_raster(path)
    gt = ds.GetGeoTransform(can_return_null=True)
    band = ds.GetRasterBand(1)
    crs, method = ds.GetProjection() or "", ""
    if gt is None and ds.GetGCPCount() >= 3 and ds.GetGCPProjection():
        crs, method = ds.GetGCPProjection(), "gcps"
    elif gt is None and ds.GetMetadata("RPC"):
        crs, method = osr.SRS_WKT_WGS84_LAT_LONG, "rpc"
    return RasterInfo(
        path=str(path),
        width=ds.RasterXSize,
        height=ds.RasterYSize,
        bands=ds.RasterCount,
        dtype=gdal.GetDataTypeName(band.DataType),
        geotransform=tuple(gt) if gt is not None else None,
        crs_wkt=crs,
        nodata=band.GetNoDataValue(),
        georef_method=method,
    )


def _transformer(info: RasterInfo) -> gdal.Transformer:
    """GDAL's pixel <-> map transformer for the raster's own georeference (geotransform, GCPs or RPCs):
    the same one gdal.Warp uses to place it."""
    options = {"geotransform": [], "gcps": ["METHOD=GCP_POLYNOMIAL"], "rpc": ["METHOD=RPC"]}[info.placement]
    return gdal.Transformer(open_raster(info.path), None, options)


def pixel_to_map(info: RasterInfo, cols: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """GDAL pixel/line (corner convention) of a georeferenced raster -> map x, y in ``info.crs_wkt``
    (x = easting / longitude). Non-invertible points come back NaN."""
    cols, rows = np.asarray(cols, float).ravel(), np.asarray(rows, float).ravel()
    if info.placement == "geotransform":
        gt = info.geotransform
        return gt[0] + cols * gt[1] + rows * gt[2], gt[3] + cols * gt[4] + rows * gt[5]
    pts, ok = _transformer(info).TransformPoints(0, np.column_stack([cols, rows]).tolist())
    out = np.asarray(pts, float)[:, :2].reshape(-1, 2)
    out[~np.asarray(ok, bool)] = np.nan
    return out[:, 0], out[:, 1]


def map_to_pixel(info: RasterInfo, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Inverse of :func:`pixel_to_map`."""
    x, y = np.asarray(x, float).ravel(), np.asarray(y, float).ravel()
    if info.placement == "geotransform":
        inv = gdal.InvGeoTransform(info.geotransform)
        return inv[0] + x * inv[1] + y * inv[2], inv[3] + x * inv[4] + y * inv[5]
    pts, ok = _transformer(info).TransformPoints(1, np.column_stack([x, y]).tolist())
    out = np.asarray(pts, float)[:, :2].reshape(-1, 2)
    out[~np.asarray(ok, bool)] = np.nan
    return out[:, 0], out[:, 1]


def srs_from_wkt(wkt: str) -> osr.SpatialReference:
    srs = osr.SpatialReference()
    srs.ImportFromWkt(wkt)
    srs.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    return srs


def transform_points(x: np.ndarray, y: np.ndarray, src_wkt: str, dst_wkt: str) -> tuple[np.ndarray, np.ndarray]:
    """Reproject map coordinates (x = easting/longitude, y = northing/latitude) between CRSs."""
    src, dst = srs_from_wkt(src_wkt), srs_from_wkt(dst_wkt)
    if src.IsSame(dst):
        return np.asarray(x, float), np.asarray(y, float)
    ct = osr.CoordinateTransformation(src, dst)
    pts = np.asarray(ct.TransformPoints(np.column_stack([x, y]).astype(float).tolist()))
    return pts[:, 0], pts[:, 1]


def footprint_in(info: RasterInfo, dst_wkt: str, samples: int = 21) -> tuple[float, float, float, float]:
    """Bounds of a raster's footprint in another CRS, densified along its edges (curved reprojections,
    GCP / RPC geometry)."""
    t = np.linspace(0.0, 1.0, samples)
    w, h = info.width, info.height
    cols = np.concatenate([t * w, np.full_like(t, w), (1 - t) * w, np.zeros_like(t)])
    rows = np.concatenate([np.zeros_like(t), t * h, np.full_like(t, h), (1 - t) * h])
    xs, ys = pixel_to_map(info, cols, rows)
    good = np.isfinite(xs) & np.isfinite(ys)
    px, py = transform_points(xs[good], ys[good], info.crs_wkt, dst_wkt)
    ok = np.isfinite(px) & np.isfinite(py)
    if not ok.any():
        raise InputError(f"{os.path.basename(info.path)}: footprint cannot be reprojected to the optical CRS.")
    return float(px[ok].min()), float(py[ok].min()), float(px[ok].max()), float(py[ok].max())


def work_grid(optical: RasterInfo, sar: Optional[RasterInfo], max_side: int) -> Grid:
    """The grid both images are matched on: the optical raster's grid, cropped to the SAR footprint and
    coarsened by an integer-free factor so that its longer side is at most ``max_side`` pixels."""
    if not optical.georeferenced:
        raise InputError(
            f"{os.path.basename(optical.path)}: the optical (reference) raster has no georeference/CRS; "
            "it must be georeferenced because its map coordinates become the GCP targets."
        )
    gt = optical.geotransform
    if gt is None:  # georeferenced by GCPs or RPCs: no map grid of its own to put the output on
        raise InputError(
            f"{os.path.basename(optical.path)}: the optical (reference) raster is georeferenced only by GCPs or RPCs; "
            "warp it onto a map grid first (e.g. gdalwarp), since its grid becomes the output grid."
        )
    if abs(gt[2]) > 1e-12 or abs(gt[4]) > 1e-12:
        raise InputError(f"{os.path.basename(optical.path)}: rotated geotransforms are not supported; warp it north-up first.")
    oxmin, oymin, oxmax, oymax = optical.bounds
    if sar is not None and sar.georeferenced:
        sxmin, symin, sxmax, symax = footprint_in(sar, optical.crs_wkt)
        xmin, ymin, xmax, ymax = max(oxmin, sxmin), max(oymin, symin), min(oxmax, sxmax), min(oymax, symax)
        if xmax <= xmin or ymax <= ymin:
            raise InputError(
                f"No overlap: {os.path.basename(sar.path)} and {os.path.basename(optical.path)} do not cover "
                "the same ground (compare their extents; check the CRS of each)."
            )
    else:
        xmin, ymin, xmax, ymax = oxmin, oymin, oxmax, oymax
    # Snap the crop to whole optical pixels so the work grid is a coarsening of the optical grid.
    px, py = abs(gt[1]), abs(gt[5])
    c0 = math.floor((xmin - oxmin) / px + 1e-6)
    c1 = math.ceil((xmax - oxmin) / px - 1e-6)
    r0 = math.floor((oymax - ymax) / py + 1e-6)
    r1 = math.ceil((oymax - ymin) / py - 1e-6)
    w, h = max(c1 - c0, 1), max(r1 - r0, 1)
    if min(w, h) < 32:
        raise InputError(f"Overlap too small to match: {w} x {h} optical pixels (at least 32 x 32 needed).")
    factor = max(1.0, max(w, h) / float(max_side))
    gw, gh = max(1, round(w / factor)), max(1, round(h / factor))
    new_gt = (oxmin + c0 * px, w * px / gw, 0.0, oymax - r0 * py, 0.0, -h * py / gh)
    return Grid(new_gt, gw, gh, optical.crs_wkt)


def read_on_grid(
    path: str,
    grid: Grid,
    bands: Optional[Sequence[int]] = None,
    resampling: str = "average",
) -> tuple[np.ndarray, np.ndarray]:
    """Resample a georeferenced raster onto ``grid``. Returns (float32 array (B, H, W), valid mask (H, W)).

    Invalid = outside the raster, nodata, or non-finite. The file is only read, never modified.
    """
    ds = open_raster(path)
    band_list = list(bands) if bands is not None else list(range(1, ds.RasterCount + 1))
    try:
        # Band selection through a VRT: GDAL 3.6's Warp has no srcBands option.
        src = gdal.Translate("", ds, format="VRT", bandList=band_list) if band_list != list(range(1, ds.RasterCount + 1)) else ds
    except RuntimeError as exc:
        raise InputError(f"{os.path.basename(path)}: bands {band_list} cannot be read ({str(exc).strip()}).") from None
    return warp_onto_grid(src, grid, os.path.basename(path), resampling)


def warp_onto_grid(
    src: gdal.Dataset,
    grid: Grid,
    name: str,
    resampling: str = "average",
    polynomial_order: Optional[int] = None,
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`read_on_grid` for an open dataset, e.g. a VRT carrying GCPs (``polynomial_order`` then picks
    GDAL's GCP transformer). Only the source blocks (or overview level) the grid needs are read."""
    xmin = grid.geotransform[0]
    ymax = grid.geotransform[3]
    xmax = xmin + grid.width * grid.geotransform[1]
    ymin = ymax + grid.height * grid.geotransform[5]
    extra = {"polynomialOrder": polynomial_order} if polynomial_order else {}
    try:
        out = gdal.Warp(
            "",
            src,
            format="MEM",
            dstSRS=grid.crs_wkt,
            outputBounds=(xmin, ymin, xmax, ymax),
            width=grid.width,
            height=grid.height,
            resampleAlg=resampling,
            outputType=gdal.GDT_Float32,
            workingType=gdal.GDT_Float32,
            dstAlpha=True,
            multithread=True,
            **extra,
        )
    except RuntimeError as exc:
        raise InputError(f"{name}: cannot be resampled onto the work grid ({str(exc).strip()}).") from None
    if out is None:  # a damaged file can fail with GDAL warnings only, and Warp returns nothing
        why = gdal.GetLastErrorMsg().strip() or "unreadable pixels"
        raise InputError(f"{name}: not a readable raster ({why}).")
    try:
        arr = out.ReadAsArray()
    except RuntimeError as exc:
        raise InputError(f"{name}: pixels cannot be read ({str(exc).strip()}).") from None
    if arr is None:
        raise InputError(f"{name}: pixels cannot be read ({gdal.GetLastErrorMsg().strip() or 'damaged file'}).")
    arr = arr.astype(np.float32, copy=False)
    if arr.ndim == 2:
        arr = arr[None]
    data, alpha = arr[:-1], arr[-1]
    valid = (alpha > 0) & np.all(np.isfinite(data), axis=0)
    data = np.where(np.isfinite(data), data, 0.0).astype(np.float32)
    return data, valid


Scale = tuple[float, float]
"""(x, y) downsampling factors, old size / new size per axis: rounding the smaller side to whole pixels
makes them differ slightly, and a single factor would bias positions at the far edge by up to a pixel."""


def read_pixels(path: str, max_side: Optional[int] = None, bands: Optional[Sequence[int]] = None) -> tuple[np.ndarray, np.ndarray, Scale]:
    """Read a raster in its own pixel grid (no georeference needed), optionally downsampled so that its
    longer side is at most ``max_side``. Returns (array (B, H, W) float32, valid mask, (fx, fy) factors)."""
    ds = open_raster(path)
    band_list = list(bands) if bands is not None else list(range(1, ds.RasterCount + 1))
    factor = 1.0
    w, h = ds.RasterXSize, ds.RasterYSize
    if max_side is not None and max(w, h) > max_side:
        factor = max(w, h) / float(max_side)
    bw, bh = max(1, round(w / factor)), max(1, round(h / factor))
    arrs, valid = [], np.ones((bh, bw), bool)
    try:
        for b in band_list:
            band = ds.GetRasterBand(b)
            a = band.ReadAsArray(buf_xsize=bw, buf_ysize=bh, resample_alg=gdal.GRIORA_Average).astype(np.float32)
            nd = band.GetNoDataValue()
            if nd is not None:
                valid &= ~np.isclose(a, nd) if np.isfinite(nd) else np.isfinite(a)
            valid &= np.isfinite(a)
            arrs.append(np.where(np.isfinite(a), a, 0.0))
    except RuntimeError as exc:
        raise InputError(f"{os.path.basename(path)}: pixels cannot be read ({str(exc).strip()}).") from None
    return np.stack(arrs).astype(np.float32), valid, (w / float(bw), h / float(bh))


def downsample(bands: np.ndarray, valid: np.ndarray, max_side: int) -> tuple[tuple[np.ndarray, np.ndarray], Scale]:
    """Area-average (B, H, W) bands so the longer side is at most ``max_side``; a pixel is valid only if
    its whole footprint was. Returns ((bands, valid), (fx, fy)) with f = old size / new size per axis."""
    import cv2

    _, h, w = bands.shape
    if max(h, w) <= max_side:
        return (bands, valid), (1.0, 1.0)
    f = max(h, w) / float(max_side)
    size = (max(1, round(w / f)), max(1, round(h / f)))
    out = np.stack([cv2.resize(b, size, interpolation=cv2.INTER_AREA) for b in bands])
    v = cv2.resize(valid.astype(np.float32), size, interpolation=cv2.INTER_AREA) > 0.999
    return (out.astype(np.float32), v), (w / float(size[0]), h / float(size[1]))
