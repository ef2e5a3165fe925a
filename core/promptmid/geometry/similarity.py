"""The similarity warp model: a rotation, one scale and a shift of the SAR *as placed on the optical grid*.

Two images of the same ground differ by a rotation, a scale and a shift, which is what the engine fits on
the work grid (:func:`..geometry.fit.as_similarity`); the written warp must be that same transform. It
lives in the optical raster's pixel plane, applied after the SAR's own placement there: for a SAR without
georeference, its pixel grid as it is; for a georeferenced SAR, its geotransform, GCPs or RPCs and the
reprojection to the optical CRS (the similarity corrects that placement, it does not replace it).

GDAL warps only through polynomials or splines of GCPs, so the similarity reaches GDAL as a grid of *exact*
GCPs (points of the model, not tie points; the tie points stay the GCPs the .points file holds): an affine
through them where the placement is affine (no georeference, or a geotransform in the optical CRS), which
reproduces the similarity exactly; else a thin-plate spline through a dense grid, which follows the
placement's curvature (GCP or RPC geometry, a reprojection) between its points.

Coordinates: SAR source pixel/line and optical pixels in GDAL's corner convention, map units of the
optical CRS.
"""

from __future__ import annotations

import numpy as np

from ..errors import RegistrationError
from ..io.rasters import Grid, RasterInfo, pixel_to_map, srs_from_wkt, transform_points
from .fit import apply_h, least_squares_similarity
from .gcps import GCPSet, pixel_jacobian_inv

AFFINE_GRID = 5  # exact GCPs per side when the placement is affine (3 would do; more costs nothing)
SPLINE_GRID = 17  # per side when it is not: dense enough that the spline follows GCP / RPC geometry


def placement_is_affine(sar: RasterInfo, optical: Grid) -> bool:
    """True when SAR pixel/line reach optical pixels through an affine map (no georeference, or a
    geotransform in the optical CRS)."""
    if not sar.georeferenced:
        return True
    return sar.placement == "geotransform" and srs_from_wkt(sar.crs_wkt).IsSame(srs_from_wkt(optical.crs_wkt))


def placed(sar: RasterInfo, optical: Grid, pixel: np.ndarray, line: np.ndarray) -> np.ndarray:
    """(N, 2) optical pixel positions of SAR source positions under the SAR's own placement (its pixel
    grid itself when it has none). NaN where the placement cannot be evaluated."""
    pixel, line = np.asarray(pixel, float).ravel(), np.asarray(line, float).ravel()
    if not sar.georeferenced:
        return np.column_stack([pixel, line])
    sx, sy = pixel_to_map(sar, pixel, line)
    mx, my = transform_points(sx, sy, sar.crs_wkt, optical.crs_wkt)
    return np.column_stack(optical.map_to_pixel(np.asarray(mx), np.asarray(my)))


def fit_similarity(gcps: GCPSet, sar: RasterInfo, optical: Grid) -> np.ndarray:
    """3x3 least-squares similarity from the GCPs' placed SAR positions to their optical pixels."""
    src = placed(sar, optical, gcps.pixel, gcps.line)
    dst = np.column_stack(optical.map_to_pixel(gcps.map_x, gcps.map_y))
    ok = np.all(np.isfinite(src), axis=1)
    if ok.sum() < 2:
        raise RegistrationError(f"{int(ok.sum())} usable GCPs are too few for a similarity transform (needs at least 2).")
    return least_squares_similarity(src[ok], dst[ok])


def similarity_residuals(gcps: GCPSet, sar: RasterInfo, optical: Grid) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Residuals of the similarity at each GCP, as :func:`..geometry.gcps.polynomial_residuals` gives them:
    (dx, dy) in SAR source pixels, the length in map units; model minus GCP."""
    m = fit_similarity(gcps, sar, optical)
    mx, my = optical.pixel_to_map(*apply_h(m, placed(sar, optical, gcps.pixel, gcps.line)).T)
    res_map = np.column_stack([mx - gcps.map_x, my - gcps.map_y])
    res_px = res_map @ pixel_jacobian_inv(gcps).T
    return res_px[:, 0], res_px[:, 1], np.linalg.norm(res_map, axis=1)


def similarity_warp_gcps(gcps: GCPSet, sar: RasterInfo, optical: Grid) -> tuple[GCPSet, str]:
    """(exact GCPs of the similarity over the whole SAR raster, GDAL model to warp through them:
    "affine" or "tps"); see the module docstring."""
    m = fit_similarity(gcps, sar, optical)
    affine = placement_is_affine(sar, optical)
    n = AFFINE_GRID if affine else SPLINE_GRID
    t = np.linspace(0.0, 1.0, n)
    pixel, line = (a.ravel() for a in np.meshgrid(t * sar.width, t * sar.height))
    at = placed(sar, optical, pixel, line)
    ok = np.all(np.isfinite(at), axis=1)
    mx, my = optical.pixel_to_map(*apply_h(m, at[ok]).T)
    exact = GCPSet(pixel[ok], line[ok], mx, my, np.ones(int(ok.sum())), gcps.crs_wkt)
    return exact, "affine" if affine else "tps"
