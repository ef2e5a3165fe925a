"""Warping the SAR raster through GDAL: the engine's similarity, or a polynomial (1/2) / thin-plate spline
through the GCPs."""

from __future__ import annotations

import os
from typing import Callable, Optional

import numpy as np
from osgeo import gdal, gdal_array

from ..errors import OutputError
from ..io.atomic import atomic_path
from ..io.rasters import Grid, RasterInfo, open_raster, raster_info
from .gcps import GCPSet
from .similarity import similarity_warp_gcps

_ORDER = {"affine": 1, "poly2": 2}
# Integer types whose every value may be data: a wider type for the output, with a nodata value outside the input's range.
_WIDER = {gdal.GDT_Byte: (gdal.GDT_Int16, -1), gdal.GDT_UInt16: (gdal.GDT_Int32, -1), gdal.GDT_Int16: (gdal.GDT_Int32, -32769),
          gdal.GDT_UInt32: (gdal.GDT_Float64, float("nan")), gdal.GDT_Int32: (gdal.GDT_Float64, float("nan"))}


def output_nodata(src: gdal.Dataset) -> tuple[float, Optional[int]]:
    """(nodata value, output data type or None = same as input) for warping ``src``.

    The source's own nodata when it has one; NaN for float data. An integer raster without one has no
    value to spare a priori: 0 is often real data (dark water, shadow) and must not vanish, so the value
    is one the data does not use (the type's minimum, else its maximum, found from the exact band
    min/max); when the data spans the whole type, the output is widened (e.g. Byte -> Int16 with -1).
    """
    band = src.GetRasterBand(1)
    nodata = band.GetNoDataValue()
    if nodata is not None:
        return nodata, None
    dtype = band.DataType
    if gdal.GetDataTypeName(dtype).startswith(("Float", "CFloat")):
        return float("nan"), None
    info = np.iinfo(gdal_array.GDALTypeCodeToNumericTypeCode(dtype))
    lo, hi = np.inf, -np.inf
    for b in range(1, src.RasterCount + 1):
        bmin, bmax = src.GetRasterBand(b).ComputeRasterMinMax(False)  # exact: an approximate minimum proves nothing
        lo, hi = min(lo, bmin), max(hi, bmax)
    if lo > info.min:
        return float(info.min), None
    if hi < info.max:
        return float(info.max), None
    wider, value = _WIDER[dtype]
    return value, wider


def warp_gcps(gcps: GCPSet, transform: str, sar: RasterInfo, optical: Optional[Grid]) -> tuple[GCPSet, str]:
    """(GCPs, GDAL model: "affine", "poly2" or "tps") that a warp with ``transform`` goes through: the GCPs
    themselves, or for "similarity" the exact GCPs of the similarity in ``optical``'s pixel plane."""
    if transform == "similarity":
        if optical is None:
            raise ValueError("A similarity warp needs the optical raster's grid.")
        return similarity_warp_gcps(gcps, sar, optical)
    if transform not in (*_ORDER, "tps"):
        raise ValueError(f"Unknown transform '{transform}' (similarity, affine, poly2 or tps).")
    return gcps, transform


def warp_model(gcps: GCPSet, transform: str, sar: RasterInfo, optical: Optional[Grid]) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    """The map position ((N, 2), GCPs' CRS; NaN where undefined) that the warp :func:`warp_with_gcps` writes
    gives SAR source positions (pixel, line): GDAL's GCP transformer through the same GCPs and model."""
    through, model = warp_gcps(gcps, transform, sar, optical)
    ds = gdal.GetDriverByName("MEM").Create("", sar.width, sar.height, 1)
    ds.SetGCPs(through.to_gdal(), through.crs_wkt)
    method = ["METHOD=GCP_TPS"] if model == "tps" else ["METHOD=GCP_POLYNOMIAL", f"MAX_GCP_ORDER={_ORDER[model]}"]
    tr = gdal.Transformer(ds, None, method)

    def apply(pixel: np.ndarray, line: np.ndarray) -> np.ndarray:
        pts, ok = tr.TransformPoints(0, np.column_stack([np.ravel(pixel), np.ravel(line)]).astype(float).tolist())
        out = np.asarray(pts, float)[:, :2].reshape(-1, 2)
        out[~np.asarray(ok, bool)] = np.nan
        return out

    apply.dataset = ds  # type: ignore[attr-defined]  # the transformer reads it: keep it alive with the function
    return apply


def warp_with_gcps(
    sar_path: str,
    out_path: str,
    gcps: GCPSet,
    transform: str = "affine",
    resampling: str = "bilinear",
    target: Optional[Grid] = None,
    optical: Optional[Grid] = None,
) -> None:
    """Write ``out_path`` (GeoTIFF, optical CRS): the SAR raster resampled through its GCPs.

    ``transform``: "similarity" (the least-squares similarity of the GCPs in ``optical``'s pixel plane,
    required then; see ``similarity.py``), "affine", "poly2" or "tps" (GDAL's models through the GCPs).
    ``target`` fixes the output grid (extent, pixel size); None lets GDAL keep roughly the SAR's
    resolution. Nodata: the source's, else NaN for float data, else a value the integer data does not use
    (see :func:`output_nodata`), so real zeros stay data.
    The input file is only read: GCPs are attached to an in-memory VRT copy.
    """
    src = open_raster(sar_path)
    src_nodata = src.GetRasterBand(1).GetNoDataValue()
    dst_nodata, out_type = output_nodata(src)
    through, model = warp_gcps(gcps, transform, raster_info(sar_path), optical)
    vrt = gdal.Translate("", src, format="VRT", GCPs=through.to_gdal(), outputSRS=gcps.crs_wkt)
    options = dict(
        format="GTiff",
        dstSRS=gcps.crs_wkt,
        resampleAlg=resampling,
        dstNodata=dst_nodata,
        creationOptions=["COMPRESS=DEFLATE", "TILED=YES", "BIGTIFF=IF_SAFER"],
        multithread=True,
    )
    if model == "tps":
        options["tps"] = True
    else:
        options["polynomialOrder"] = _ORDER[model]
    if src_nodata is not None:
        options["srcNodata"] = src_nodata
    if out_type is not None:
        options["outputType"] = out_type
    if target is not None:
        gt = target.geotransform
        options.update(outputBounds=(gt[0], gt[3] + target.height * gt[5], gt[0] + target.width * gt[1], gt[3]),
                       width=target.width, height=target.height)
    with atomic_path(out_path) as tmp:
        try:
            out = gdal.Warp(tmp, vrt, **options)
        except RuntimeError as exc:
            raise OutputError(f"Warping {os.path.basename(sar_path)} failed: {str(exc).strip()}") from None
        if out is None:
            raise OutputError(f"Warping {os.path.basename(sar_path)} failed.")
        out.SetMetadataItem("PROMPTMID_TRANSFORM", transform)
        out.SetMetadataItem("PROMPTMID_GCP_COUNT", str(len(gcps)))
        out.FlushCache()
        out = None
