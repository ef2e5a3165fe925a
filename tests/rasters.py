"""GDAL raster builders and test images shared by the tests (imported as `rasters`)."""

from __future__ import annotations

import os
from typing import Optional

import numpy as np
from osgeo import gdal, osr

gdal.UseExceptions()


def epsg_wkt(code: int) -> str:
    srs = osr.SpatialReference()
    srs.ImportFromEPSG(code)
    return srs.ExportToWkt()


GDAL_TYPES = {np.dtype("uint8"): gdal.GDT_Byte, np.dtype("uint16"): gdal.GDT_UInt16, np.dtype("int16"): gdal.GDT_Int16,
              np.dtype("float32"): gdal.GDT_Float32, np.dtype("float64"): gdal.GDT_Float64}


def write_raster(path: os.PathLike, array: np.ndarray, geotransform: Optional[tuple] = (500000.0, 10.0, 0.0, 4500000.0, 0.0, -10.0),
                 epsg: Optional[int] = 32633, nodata: Optional[float] = None, wkt: Optional[str] = None) -> str:
    """Write a (H, W) or (B, H, W) array as a GeoTIFF; None geotransform/epsg for an ungeoreferenced file
    (``wkt`` overrides ``epsg``)."""
    arr = array if array.ndim == 3 else array[None]
    ds = gdal.GetDriverByName("GTiff").Create(str(path), arr.shape[2], arr.shape[1], arr.shape[0], GDAL_TYPES[arr.dtype])
    if geotransform is not None:
        ds.SetGeoTransform(geotransform)
    if wkt or epsg is not None:
        ds.SetProjection(wkt or epsg_wkt(epsg))
    for i, band in enumerate(arr, start=1):
        b = ds.GetRasterBand(i)
        if nodata is not None:
            b.SetNoDataValue(nodata)
        b.WriteArray(band)
    ds = None
    return str(path)


def textured(h: int = 256, w: int = 256, seed: int = 0) -> np.ndarray:
    """A deterministic structured test image (blocks + lines, like fields and roads), float32 in [0, 1]."""
    rng = np.random.default_rng(seed)
    img = np.zeros((h, w), np.float32)
    for _ in range(40):
        y, x = rng.integers(0, h - 20), rng.integers(0, w - 20)
        img[y : y + rng.integers(8, 40), x : x + rng.integers(8, 40)] = rng.uniform(0.2, 1.0)
    for _ in range(6):
        r = rng.integers(0, h)
        img[r : r + 2, :] = 0.9
        c = rng.integers(0, w)
        img[:, c : c + 2] = 0.1
    return img
