"""Warping the SAR raster with GCPs through GDAL (polynomial 1/2 or thin-plate spline)."""

from __future__ import annotations

import os
from typing import Optional

from osgeo import gdal

from ..errors import OutputError
from ..io.atomic import atomic_path
from ..io.rasters import Grid, open_raster
from .gcps import GCPSet

_ORDER = {"affine": 1, "poly2": 2}


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
    resolution. Nodata is preserved (source nodata, else 0 for integer data and NaN for float data).
    The input file is only read: GCPs are attached to an in-memory VRT copy.
    """
    src = open_raster(sar_path)
    band = src.GetRasterBand(1)
    src_nodata = band.GetNoDataValue()
    is_float = gdal.GetDataTypeName(band.DataType).startswith(("Float", "CFloat"))
    dst_nodata = src_nodata if src_nodata is not None else (float("nan") if is_float else 0)
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
