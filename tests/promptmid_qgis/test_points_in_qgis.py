"""The .points file as QGIS reads it: the CRS line through QGIS's own CRS parser, the rows as the 3.22
Georeferencer's loader splits them, and a QGIS GCP transformer fitted on them reproducing GDAL's result.

(The Georeferencer's loader itself lives in the QGIS application, not in the Python API, on 3.22.)"""

import numpy as np
from osgeo import gdal
from qgis.analysis import QgsGcpTransformerInterface
from qgis.core import QgsCoordinateReferenceSystem, QgsPointXY

from promptmid.config import EngineConfig
from promptmid.pipeline import register


def test_points_file_reads_back_in_qgis(qgis_app, pair_files, tmp_path):
    result = register(pair_files[0], pair_files[1], str(tmp_path / "o"), EngineConfig(engine="classical"))
    lines = open(result.outputs["points"], encoding="utf-8").read().splitlines()
    assert lines[0].startswith("#CRS: ")
    crs = QgsCoordinateReferenceSystem(lines[0].replace("#CRS: ", ""))
    assert crs.isValid() and crs == QgsCoordinateReferenceSystem("EPSG:3395")
    rows = [ln.split(",") for ln in lines[2:]]  # the loader skips the header line after #CRS
    assert all(len(r) >= 5 and r[4] == "1" for r in rows)
    src = [QgsPointXY(float(r[2]), float(r[3])) for r in rows]
    dst = [QgsPointXY(float(r[0]), float(r[1])) for r in rows]
    # PolynomialOrder1 = affine, like GDAL order 1 (QGIS "Linear" is scale + translation only)
    t = QgsGcpTransformerInterface.create(QgsGcpTransformerInterface.TransformMethod.PolynomialOrder1)
    assert t.updateParametersFromGcps(src, dst)
    # Pixel (col, row) = (300, 400) -> QGIS source coordinates (300, -400) in 3.22's pixel convention.
    ok, x, y = t.transform(300.0, -400.0)
    assert ok
    warped = gdal.Open(result.outputs["warped"])
    gt = warped.GetGeoTransform()
    # The same SAR pixel through GDAL's GCP transformer (the one that wrote the warped raster).
    tr = gdal.Transformer(gdal.Translate("", pair_files[1], format="VRT", GCPs=_gcps(rows), outputSRS=crs.toWkt()), None, ["METHOD=GCP_POLYNOMIAL", "MAX_GCP_ORDER=1"])
    ok2, (gx, gy, _z) = tr.TransformPoint(0, 300.0, 400.0)
    assert ok2 and np.hypot(x - gx, y - gy) < 0.01 * abs(gt[1])


def _gcps(rows):
    return [gdal.GCP(float(r[0]), float(r[1]), 0, float(r[2]), -float(r[3])) for r in rows]
