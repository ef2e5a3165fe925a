"""Ground control points: residuals of the warp model, and the files GIS tools read them from.

A GCP links a SAR *source* position (GDAL pixel/line: continuous, (0, 0) = top-left corner of the
first pixel) to a *map* position (x, y in the optical raster's CRS).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import numpy as np
from osgeo import gdal, ogr, osr

from ..errors import RegistrationError
from ..io.atomic import atomic_path
from ..io.rasters import srs_from_wkt

ogr.UseExceptions()


@dataclass
class GCPSet:
    pixel: np.ndarray  # (N,) SAR source column, GDAL continuous pixel coordinates
    line: np.ndarray  # (N,) SAR source row
    map_x: np.ndarray  # (N,) target map coordinates, optical CRS
    map_y: np.ndarray
    similarity: np.ndarray  # (N,) descriptor cosine similarity of the match
    crs_wkt: str

    def __len__(self) -> int:
        return len(self.pixel)

    def subset(self, idx: np.ndarray) -> "GCPSet":
        return GCPSet(self.pixel[idx], self.line[idx], self.map_x[idx], self.map_y[idx], self.similarity[idx], self.crs_wkt)

    def to_gdal(self) -> list[gdal.GCP]:
        return [gdal.GCP(float(x), float(y), 0.0, float(p), float(l)) for x, y, p, l in zip(self.map_x, self.map_y, self.pixel, self.line)]


def spread_subset(gcps: GCPSet, max_n: int, cells: int = 20) -> GCPSet:
    """At most ``max_n`` GCPs spread over the source image: best-similarity GCP per grid cell first."""
    n = len(gcps)
    if n <= max_n:
        return gcps
    px, ln = gcps.pixel, gcps.line
    cx = np.minimum(((px - px.min()) / (np.ptp(px) + 1e-9) * cells).astype(int), cells - 1)
    cy = np.minimum(((ln - ln.min()) / (np.ptp(ln) + 1e-9) * cells).astype(int), cells - 1)
    cell = cy * cells + cx
    order = np.lexsort((-gcps.similarity, cell))
    first_in_cell = np.r_[True, cell[order][1:] != cell[order][:-1]]
    picked = list(order[first_in_cell])
    rest = [i for i in np.argsort(-gcps.similarity) if i not in set(picked)]
    idx = np.array((picked + rest)[:max_n])
    return gcps.subset(np.sort(idx))


def _design(px: np.ndarray, ln: np.ndarray, order: int) -> np.ndarray:
    cols = [np.ones_like(px), px, ln]
    if order == 2:
        cols += [px * px, px * ln, ln * ln]
    return np.column_stack(cols)


def fit_polynomial(gcps: GCPSet, order: int = 1) -> np.ndarray:
    """Least-squares coefficients (k, 2) of map (x, y) as a polynomial of (pixel, line), like GDAL's
    polynomial GCP transformer: order 1 = [1, p, l], order 2 adds [p^2, p l, l^2]."""
    a = _design(gcps.pixel, gcps.line, order)
    coef, *_ = np.linalg.lstsq(a, np.column_stack([gcps.map_x, gcps.map_y]), rcond=None)
    return coef


def eval_polynomial(coef: np.ndarray, pixel: np.ndarray, line: np.ndarray) -> np.ndarray:
    """(N, 2) map coordinates of source positions under :func:`fit_polynomial` coefficients."""
    order = 1 if len(coef) == 3 else 2
    return _design(np.asarray(pixel, float), np.asarray(line, float), order) @ coef


def polynomial_residuals(gcps: GCPSet, transform: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Residuals of the least-squares warp model at each GCP, as the QGIS Georeferencer reports them.

    Returns (dx, dy) in *source pixels* and the residual length in *map units*. ``tps`` interpolates
    exactly, so its residuals are zero. Source-pixel residuals use the local linear part of the affine
    fit to convert from map units, so they are meaningful for ungeoreferenced SAR too.
    """
    n = len(gcps)
    order = {"affine": 1, "poly2": 2, "tps": 1}[transform]
    need = {1: 3, 2: 6}[order]
    if n < need:
        raise RegistrationError(f"{n} GCPs are too few for a {transform} transform (needs at least {need}).")
    lin = fit_polynomial(gcps, 1)[1:3].T  # d(map)/d(pixel, line)
    if transform == "tps":
        z = np.zeros(n)
        return z, z, z
    res_map = eval_polynomial(fit_polynomial(gcps, order), gcps.pixel, gcps.line) - np.column_stack([gcps.map_x, gcps.map_y])
    res_px = res_map @ np.linalg.inv(lin).T
    return res_px[:, 0], res_px[:, 1], np.linalg.norm(res_map, axis=1)


def write_points_file(path: str, gcps: GCPSet, dx: np.ndarray, dy: np.ndarray, source: str = "pixel",
                      source_geotransform: tuple | None = None) -> None:
    """QGIS Georeferencer GCP file (``.points``).

    Line 1 ``#CRS: <WKT>`` (destination CRS), then ``mapX,mapY,sourceX,sourceY,enable,dX,dY,residual``.
    ``source="pixel"``: source in pixels with y negative downward (QGIS <= 3.24, and any ungeoreferenced
    source). ``source="layer"``: source in the SAR layer's own georeferenced coordinates (QGIS >= 3.26
    for georeferenced sources), which needs ``source_geotransform``.
    """
    if source == "layer":
        if source_geotransform is None:
            raise ValueError("source='layer' needs the source raster's geotransform")
        gt = source_geotransform
        sx = gt[0] + gcps.pixel * gt[1] + gcps.line * gt[2]
        sy = gt[3] + gcps.pixel * gt[4] + gcps.line * gt[5]
    elif source == "pixel":
        sx, sy = gcps.pixel, -gcps.line
    else:
        raise ValueError(f"unknown source convention {source!r}")
    res = np.hypot(dx, dy)
    wkt = srs_from_wkt(gcps.crs_wkt).ExportToWkt()
    with atomic_path(path) as tmp:
        with open(tmp, "w", encoding="utf-8", newline="\n") as fh:
            fh.write(f"#CRS: {wkt}\n")
            fh.write("mapX,mapY,sourceX,sourceY,enable,dX,dY,residual\n")
            for row in zip(gcps.map_x, gcps.map_y, sx, sy, dx, dy, res):
                mx, my, x, y, ddx, ddy, r = (float(v) for v in row)
                fh.write(f"{mx:.6f},{my:.6f},{x:.6f},{y:.6f},1,{ddx:.6f},{ddy:.6f},{r:.6f}\n")


def read_points_file(path: str) -> tuple[str, np.ndarray]:
    """(CRS WKT, (N, 7) array of mapX, mapY, sourceX, sourceY, enable, dX, dY) from a .points file."""
    with open(path, encoding="utf-8") as fh:
        first = fh.readline()
        wkt = first[len("#CRS: "):].strip() if first.startswith("#CRS:") else ""
        rows = [list(map(float, ln.split(",")[:7])) for ln in fh if ln.strip() and not ln.startswith("mapX")]
    return wkt, np.array(rows, float).reshape(-1, 7)


def gcps_from_points_file(path: str) -> GCPSet:
    """GCPs back from a .points file written with ``source="pixel"`` (sourceY is minus the line)."""
    wkt, rows = read_points_file(path)
    return GCPSet(rows[:, 2], -rows[:, 3], rows[:, 0], rows[:, 1], np.ones(len(rows)), wkt)


def write_tiepoints_gpkg(path: str, gcps: GCPSet, residual_px: np.ndarray, residual_map: np.ndarray,
                         sar_map_x: np.ndarray | None, sar_map_y: np.ndarray | None) -> None:
    """GeoPackage with layer ``tie_points`` (GCP targets + residuals) and, when the SAR was georeferenced,
    ``match_vectors``: lines from where the SAR placed each point to where the optical says it is."""
    srs = srs_from_wkt(gcps.crs_wkt)
    with atomic_path(path) as tmp:
        ds = ogr.GetDriverByName("GPKG").CreateDataSource(tmp)
        try:
            _fill_tiepoints(ds, srs, gcps, residual_px, residual_map, sar_map_x, sar_map_y)
        except RuntimeError:
            # Close now, quietly: left to the garbage collector, a broken GeoPackage (disk full) raises
            # again inside the destructor, which Python can only print as "Exception ignored".
            with contextlib.suppress(RuntimeError):
                ds.Destroy()
            raise
        ds.Destroy()  # flushes; a failure here is a write failure like any other


def _fill_tiepoints(ds: ogr.DataSource, srs: osr.SpatialReference, gcps: GCPSet, residual_px: np.ndarray,
                    residual_map: np.ndarray, sar_map_x: np.ndarray | None, sar_map_y: np.ndarray | None) -> None:
    pts = ds.CreateLayer("tie_points", srs, ogr.wkbPoint)
    fields = [("gcp_id", ogr.OFTInteger), ("sar_pixel", ogr.OFTReal), ("sar_line", ogr.OFTReal),
              ("map_x", ogr.OFTReal), ("map_y", ogr.OFTReal), ("similarity", ogr.OFTReal),
              ("residual_px", ogr.OFTReal), ("residual_map", ogr.OFTReal)]
    for name, kind in fields:
        pts.CreateField(ogr.FieldDefn(name, kind))
    pts.StartTransaction()
    for i in range(len(gcps)):
        f = ogr.Feature(pts.GetLayerDefn())
        vals = [i + 1, gcps.pixel[i], gcps.line[i], gcps.map_x[i], gcps.map_y[i], gcps.similarity[i], residual_px[i], residual_map[i]]
        for (name, kind), v in zip(fields, vals):
            f.SetField(name, int(v) if kind == ogr.OFTInteger else float(v))
        f.SetGeometry(ogr.CreateGeometryFromWkt(f"POINT ({gcps.map_x[i]!r} {gcps.map_y[i]!r})"))
        pts.CreateFeature(f)
    pts.CommitTransaction()
    if sar_map_x is not None and sar_map_y is not None:
        vec = ds.CreateLayer("match_vectors", srs, ogr.wkbLineString)
        vec.CreateField(ogr.FieldDefn("gcp_id", ogr.OFTInteger))
        vec.CreateField(ogr.FieldDefn("shift_map", ogr.OFTReal))
        vec.StartTransaction()
        for i in range(len(gcps)):
            f = ogr.Feature(vec.GetLayerDefn())
            f.SetField("gcp_id", i + 1)
            f.SetField("shift_map", float(np.hypot(gcps.map_x[i] - sar_map_x[i], gcps.map_y[i] - sar_map_y[i])))
            f.SetGeometry(ogr.CreateGeometryFromWkt(
                f"LINESTRING ({sar_map_x[i]!r} {sar_map_y[i]!r}, {gcps.map_x[i]!r} {gcps.map_y[i]!r})"))
            vec.CreateFeature(f)
        vec.CommitTransaction()

