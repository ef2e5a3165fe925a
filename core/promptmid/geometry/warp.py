"""Warping the SAR raster with GCPs through GDAL (polynomial 1/2 or thin-plate spline)."""

from __future__ import annotations

import os
from typing import Optional

import numpy as np
from osgeo import gdal, gdal_array

from ..errors import OutputError
from ..io.atomic import atomic_path
from ..io.rasters import Grid, open_raster
from .gcps import GCPSet

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


def warp_with_gcps(
    sar_path: str,
    out_path: str,
    gcps: GCPSet,
    transform: str = "affine",
    resampling: str = "bilinear",
    target: Optional[Grid] = None,
) -> None:
    """Write ``out_path`` (GeoTIFF, optical CRS): the SAR raster resampled through its GCPs.

    ``target`` fixes the output grid (extent, pixel size); None lets GDAL keep roughly the SAR's
    resolution. Nodata: the source's, else NaN for float data, else a value the integer data does not use
    (see :func:`output_nodata`), so real zeros stay data.
    The input file is only read: GCPs are attached to an in-memory VRT copy.
    """
    src = open_raster(sar_path)
    src_nodata = src.GetRasterBand(1).GetNoDataValue()
    dst_nodata, out_type = output_nodata(src)
    vrt = gdal.Translate("", src, format="VRT", GCPs=gcps.to_gdal(), outputSRS=gcps.crs_wkt)
    options = dict(
        format="GTiff",
        dstSRS=gcps.crs_wkt,
        resampleAlg=resampling,
        dstNodata=dst_nodata,
        creationOptions=["COMPRESS=DEFLATE", "TILED=YES", "BIGTIFF=IF_SAFER"],
        multithread=True,
    )
    if transform == "tps":
        options["tps"] = True
    elif transform in _ORDER:
        options["polynomialOrder"] = _ORDER[transform]
    else:
        raise ValueError(f"Unknown transform '{transform}' (affine, poly2 or tps).")
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
