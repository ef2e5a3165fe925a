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


def pixel_jacobian_inv(gcps: GCPSet) -> np.ndarray:
    """(2, 2) matrix turning map-unit offsets into source-pixel offsets (inverse of the affine fit's linear
    part), so residuals read in SAR pixels for georeferenced and ungeoreferenced SAR alike."""
    lin = fit_polynomial(gcps, 1)[1:3].T  # d(map)/d(pixel, line)
    return np.linalg.inv(lin)


MIN_GCPS = {"similarity": 2, "affine": 3, "poly2": 6, "tps": 3}  # unknowns per axis: the fewest GCPs that determine the model


def _check_count(n: int, transform: str) -> None:
    need = MIN_GCPS[transform]
    if n < need:
        raise RegistrationError(f"{n} GCPs are too few for a {transform} transform (needs at least {need}).")


def polynomial_residuals(gcps: GCPSet, transform: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Residuals of the warp model at each GCP, as the QGIS Georeferencer reports them.

    Returns (dx, dy) in *source pixels* and the residual length in *map units*; sign: model minus GCP.
    ``affine`` / ``poly2``: least-squares fit residuals. ``tps`` passes through every GCP, so its fit
    residuals are all zero and say nothing: it gets leave-one-out residuals instead (the error at each GCP
    of the spline fitted to all the others), see :func:`loo_residuals`.
    """
    if transform == "tps":
        return loo_residuals(gcps, "tps")
    _check_count(len(gcps), transform)
    order = {"affine": 1, "poly2": 2}[transform]
    res_map = eval_polynomial(fit_polynomial(gcps, order), gcps.pixel, gcps.line) - np.column_stack([gcps.map_x, gcps.map_y])
    res_px = res_map @ pixel_jacobian_inv(gcps).T
    return res_px[:, 0], res_px[:, 1], np.linalg.norm(res_map, axis=1)


def loo_residuals(gcps: GCPSet, transform: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Leave-one-out (cross-validation) residuals: for each GCP, the model fitted to all *other* GCPs,
    evaluated at it, minus the GCP. Same units and sign as :func:`polynomial_residuals`.

    This is the honest error of a model at a point it did not see, comparable across affine, poly2 and
    TPS. Closed forms, no refitting: e_i / (1 - h_ii) for least squares (h = hat matrix), and Rippa's
    formula c_i / (M^-1)_ii for the spline (c = spline coefficients, M = its system matrix).
    """
    n = len(gcps)
    _check_count(n, transform)
    target = np.column_stack([gcps.map_x, gcps.map_y])
    if transform == "tps":
        res_map = _tps_loo(gcps.pixel, gcps.line, target)
    else:
        a = _design(gcps.pixel, gcps.line, {"affine": 1, "poly2": 2}[transform])
        coef, *_ = np.linalg.lstsq(a, target, rcond=None)
        fit_res = a @ coef - target
        lev = np.einsum("ij,ji->i", a, np.linalg.pinv(a.T @ a) @ a.T)
        with np.errstate(divide="ignore", invalid="ignore"):
            res_map = fit_res / np.maximum(1.0 - lev, 1e-12)[:, None]
    res_px = res_map @ pixel_jacobian_inv(gcps).T
    return res_px[:, 0], res_px[:, 1], np.linalg.norm(res_map, axis=1)


def _tps_kernel(r2: np.ndarray) -> np.ndarray:
    # r^2 log r^2 (GDAL's thin-plate spline kernel up to a constant factor, which does not change the interpolant)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(r2 > 0, r2 * np.log(np.where(r2 > 0, r2, 1.0)), 0.0)


def _tps_normalise(px: np.ndarray, ln: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    # A thin-plate spline is invariant to a uniform scaling of its inputs: work on a unit-sized cloud.
    src = np.column_stack([px, ln]).astype(float)
    centre = src.mean(axis=0)
    scale = float(np.abs(src - centre).max()) or 1.0
    return (src - centre) / scale, centre, scale


def _tps_system(src: np.ndarray) -> np.ndarray:
    n = len(src)
    d2 = ((src[:, None, :] - src[None, :, :]) ** 2).sum(-1)
    p = np.column_stack([np.ones(n), src])
    m = np.zeros((n + 3, n + 3))
    m[:n, :n], m[:n, n:], m[n:, :n] = _tps_kernel(d2), p, p.T
    return m


def _inverse(m: np.ndarray) -> np.ndarray:
    try:
        return np.linalg.inv(m)
    except np.linalg.LinAlgError:  # duplicate GCPs: the spline is not unique; use the least-norm one
        return np.linalg.pinv(m)


def _tps_loo(px: np.ndarray, ln: np.ndarray, target: np.ndarray) -> np.ndarray:
    src, _, _ = _tps_normalise(px, ln)
    n = len(src)
    minv = _inverse(_tps_system(src))
    rhs = np.zeros((n + 3, 2))
    rhs[:n] = target - target.mean(axis=0)
    coef = minv @ rhs
    with np.errstate(divide="ignore", invalid="ignore"):
        return -coef[:n] / np.diag(minv)[:n, None]  # Rippa: f_i - s_(-i)(x_i) = c_i / (M^-1)_ii; we return s - f


def fit_tps(gcps: GCPSet):
    """A callable (pixel, line) -> (N, 2) map coordinates: the thin-plate spline through the GCPs, as
    GDAL's TPS transformer interpolates them (used to judge where a spline departs from an affine)."""
    src, centre, scale = _tps_normalise(gcps.pixel, gcps.line)
    target = np.column_stack([gcps.map_x, gcps.map_y])
    mean = target.mean(axis=0)
    n = len(src)
    rhs = np.zeros((n + 3, 2))
    rhs[:n] = target - mean
    coef = _inverse(_tps_system(src)) @ rhs

    def evaluate(pixel, line) -> np.ndarray:
        q = (np.column_stack([np.ravel(pixel), np.ravel(line)]).astype(float) - centre) / scale
        k = _tps_kernel(((q[:, None, :] - src[None, :, :]) ** 2).sum(-1))
        return k @ coef[:n] + np.column_stack([np.ones(len(q)), q]) @ coef[n:] + mean

    return evaluate


POINTS_SOURCES = ("auto", "pixel", "layer")


def resolve_points_source(source: str, source_geotransform: tuple | None) -> str:
    """The ``.points`` source convention actually written: ``"layer"`` or ``"pixel"``.

    What the QGIS Georeferencer does with the source columns (QGIS 3.22.16 checked in the desktop, and
    the 3.26+ source, ``QgsGCPList::loadGcps``): they are *layer coordinates* of the source raster, i.e.
    the coordinates QGIS shows for it. For a raster with a geotransform that is its georeferenced x/y;
    for a raster without one QGIS shows pixels with y negative downward, and it fits and warps a
    GCP-only raster (e.g. Sentinel-1 GRD) in those pixel units too (the GCPs of the file are ignored).
    Hence ``"auto"``: ``"layer"`` with a geotransform, else ``"pixel"``; ``"layer"`` without a
    geotransform falls back to ``"pixel"`` for the same reason. ``"pixel"`` forces pixels (the
    Georeferencer of QGIS 3.20 - 3.22.3 converted pixels to layer coordinates when loading).
    """
    if source not in POINTS_SOURCES:
        raise ValueError(f"unknown source convention {source!r} (use {', '.join(POINTS_SOURCES)})")
    if source == "pixel" or source_geotransform is None:
        return "pixel"
    return "layer"


def write_points_file(path: str, gcps: GCPSet, dx: np.ndarray, dy: np.ndarray, source: str = "auto",
                      source_geotransform: tuple | None = None) -> str:
    """QGIS Georeferencer GCP file (``.points``); returns the source convention written.

    Line 1 ``#CRS: <WKT>`` (destination CRS), line 2 the header (the Georeferencer skips it), then
    ``mapX,mapY,sourceX,sourceY,enable,dX,dY,residual``; dX/dY/residual in source pixels.
    Source columns (see :func:`resolve_points_source`): ``"pixel"``: GDAL pixel/line with y negated
    (x = pixel, y = -line, corner convention); ``"layer"``: the SAR's geotransform applied to
    pixel/line (all six terms, as QGIS draws the raster).
    """
    convention = resolve_points_source(source, source_geotransform)
    if convention == "layer":
        gt = source_geotransform
        sx = gt[0] + gcps.pixel * gt[1] + gcps.line * gt[2]
        sy = gt[3] + gcps.pixel * gt[4] + gcps.line * gt[5]
    else:
        sx, sy = gcps.pixel, -gcps.line
    res = np.hypot(dx, dy)
    wkt = srs_from_wkt(gcps.crs_wkt).ExportToWkt()
    with atomic_path(path) as tmp:
        with open(tmp, "w", encoding="utf-8", newline="\n") as fh:
            fh.write(f"#CRS: {wkt}\n")
            fh.write("mapX,mapY,sourceX,sourceY,enable,dX,dY,residual\n")
            for row in zip(gcps.map_x, gcps.map_y, sx, sy, dx, dy, res):
                mx, my, x, y, ddx, ddy, r = (float(v) for v in row)
                fh.write(f"{mx:.6f},{my:.6f},{x:.6f},{y:.6f},1,{ddx:.6f},{ddy:.6f},{r:.6f}\n")
    return convention


def read_points_file(path: str) -> tuple[str, np.ndarray]:
    """(CRS WKT, (N, 7) array of mapX, mapY, sourceX, sourceY, enable, dX, dY) from a .points file."""
    with open(path, encoding="utf-8") as fh:
        first = fh.readline()
        wkt = first[len("#CRS: "):].strip() if first.startswith("#CRS:") else ""
        rows = [list(map(float, ln.split(",")[:7])) for ln in fh if ln.strip() and not ln.startswith("mapX")]
    return wkt, np.array(rows, float).reshape(-1, 7)


def gcps_from_points_file(path: str, source_geotransform: tuple | None = None) -> GCPSet:
    """GCPs back from a .points file. Without ``source_geotransform`` the source columns are read as the
    ``"pixel"`` convention (sourceY is minus the line); with it, as layer coordinates of that geotransform
    (the ``"layer"`` convention), which are turned back into pixel/line."""
    wkt, rows = read_points_file(path)
    if source_geotransform is None:
        pixel, line = rows[:, 2], -rows[:, 3]
    else:
        gt = source_geotransform
        det = gt[1] * gt[5] - gt[2] * gt[4]
        dxm, dym = rows[:, 2] - gt[0], rows[:, 3] - gt[3]
        pixel = (gt[5] * dxm - gt[2] * dym) / det
        line = (gt[1] * dym - gt[4] * dxm) / det
    return GCPSet(pixel, line, rows[:, 0], rows[:, 1], np.ones(len(rows)), wkt)


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

