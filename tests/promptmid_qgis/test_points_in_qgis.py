"""The .points file against known coordinates, read the way QGIS reads it.

The SAR copies are made from a SAR whose true georeference is known (the co-registered s1s2 pair): a
misregistered copy (georeferenced, so the file holds its layer coordinates) and a copy without any
georeference (so the file holds pixels, y negative downward). A QGIS GCP transformer fitted on the
file's rows must send a SAR pixel to where the *true* georeference puts it, within the registration's
accuracy; a flipped sign or the wrong convention misses by hundreds of pixels. What the Georeferencer
application itself does with the file is checked in the desktop by scripts/gui_check.py.
"""

import numpy as np
import pytest
from osgeo import gdal
from qgis.analysis import QgsGcpTransformerInterface
from qgis.core import QgsCoordinateReferenceSystem, QgsPointXY

from promptmid.config import EngineConfig, OutputConfig
from promptmid.pipeline import register
from rasters import write_raster

PIXELS = [(100.0, 150.0), (512.0, 512.0), (900.0, 800.0)]  # SAR (col, row), GDAL corner convention


def _rows(path):
    lines = open(path, encoding="utf-8").read().splitlines()
    crs = QgsCoordinateReferenceSystem(lines[0].replace("#CRS: ", ""))
    rows = [ln.split(",") for ln in lines[2:]]  # the Georeferencer skips the header line after #CRS
    assert all(len(r) == 8 and r[4] == "1" for r in rows)
    return crs, np.array([[float(v) for v in r[:4]] for r in rows])


def _qgis_affine(rows):
    t = QgsGcpTransformerInterface.create(QgsGcpTransformerInterface.TransformMethod.PolynomialOrder1)
    assert t.updateParametersFromGcps([QgsPointXY(x, y) for x, y in rows[:, 2:4]], [QgsPointXY(x, y) for x, y in rows[:, 0:2]])
    return t


def _true_map(gt, col, row):
    return gt[0] + col * gt[1] + row * gt[2], gt[3] + col * gt[4] + row * gt[5]


def test_georeferenced_sar_points_are_layer_coordinates(qgis_app, pair_files, s1s2_pair, tmp_path):
    true_gt = gdal.Open(str(s1s2_pair / "sar.tif")).GetGeoTransform()
    mis_gt = gdal.Open(pair_files[1]).GetGeoTransform()  # shifted 20 px and rotated 1 degree
    result = register(pair_files[0], pair_files[1], str(tmp_path / "o"), EngineConfig(engine="default", accept_uncertain=True),
                      OutputConfig(qgis_points_source="auto"))
    crs, rows = _rows(result.outputs["points"])
    assert crs.isValid() and crs == QgsCoordinateReferenceSystem("EPSG:3395")
    t = _qgis_affine(rows)
    for col, row in PIXELS:
        ok, x, y = t.transform(*_true_map(mis_gt, col, row))  # QGIS source = where the SAR layer shows that pixel
        tx, ty = _true_map(true_gt, col, row)
        assert ok and np.hypot(x - tx, y - ty) < 5 * abs(true_gt[1]), (col, row, x - tx, y - ty)
    # the same rows read as pixels (the 3.22 bug report: markers off the image, output 10x too large) miss by far
    ok, x, y = t.transform(512.0, -512.0)
    assert np.hypot(x - _true_map(true_gt, 512, 512)[0], y - _true_map(true_gt, 512, 512)[1]) > 1000 * abs(true_gt[1])


def test_a_similarity_run_is_qgis_helmert_through_the_same_points(qgis_app, pair_files, s1s2_pair, tmp_path):
    """The default transform is a similarity; QGIS's is Helmert. Fitted on the file's rows it must put SAR
    pixels where the true georeference does, and leave each GCP the residual the file states."""
    true_gt = gdal.Open(str(s1s2_pair / "sar.tif")).GetGeoTransform()
    mis_gt = gdal.Open(pair_files[1]).GetGeoTransform()
    result = register(pair_files[0], pair_files[1], str(tmp_path / "o"), EngineConfig(engine="default", accept_uncertain=True),
                      OutputConfig(transform="similarity", qgis_points_source="auto"))
    _, rows = _rows(result.outputs["points"])
    stated = np.array([float(ln.split(",")[7]) for ln in open(result.outputs["points"], encoding="utf-8").read().splitlines()[2:]])
    t = QgsGcpTransformerInterface.create(QgsGcpTransformerInterface.TransformMethod.Helmert)
    assert t.updateParametersFromGcps([QgsPointXY(x, y) for x, y in rows[:, 2:4]], [QgsPointXY(x, y) for x, y in rows[:, 0:2]])
    for col, row in PIXELS:
        ok, x, y = t.transform(*_true_map(mis_gt, col, row))
        tx, ty = _true_map(true_gt, col, row)
        assert ok and np.hypot(x - tx, y - ty) < 5 * abs(true_gt[1]), (col, row, x - tx, y - ty)
    moved = np.array([t.transform(sx, sy)[1:] for sx, sy in rows[:, 2:4]])
    theirs = np.hypot(*(moved - rows[:, 0:2]).T) / abs(mis_gt[1])  # map units -> SAR pixels (square, north-up)
    assert stated.max() > 0.5 and np.abs(theirs - stated).max() < 0.05


def test_ungeoreferenced_sar_points_are_pixels_y_down(qgis_app, s1s2_pair, tmp_path):
    true_gt = gdal.Open(str(s1s2_pair / "sar.tif")).GetGeoTransform()
    bare = write_raster(tmp_path / "sar_bare.tif", gdal.Open(str(s1s2_pair / "sar.tif")).ReadAsArray(), geotransform=None, epsg=None)
    assert gdal.Open(bare).GetGeoTransform(can_return_null=True) is None
    result = register(str(s1s2_pair / "optical.tif"), bare, str(tmp_path / "o"), EngineConfig(engine="default", accept_uncertain=True),
                      OutputConfig(qgis_points_source="auto"))
    _, rows = _rows(result.outputs["points"])
    assert rows[:, 3].max() <= 0  # y negative downward
    t = _qgis_affine(rows)
    for col, row in PIXELS:
        ok, x, y = t.transform(col, -row)
        tx, ty = _true_map(true_gt, col, row)
        assert ok and np.hypot(x - tx, y - ty) < 5 * abs(true_gt[1]), (col, row, x - tx, y - ty)


@pytest.mark.parametrize("flip", [1, -1])
def test_the_check_is_not_circular(flip):
    """A file with the y sign flipped must fail the check above (the old test passed either way)."""
    gt = (1000.0, 10.0, 0.0, 5000.0, 0.0, -10.0)
    cols, lines = np.meshgrid(np.linspace(0, 500, 6), np.linspace(0, 500, 6))
    cols, lines = cols.ravel(), lines.ravel()
    rows = np.column_stack([gt[0] + 10 * cols, gt[3] - 10 * lines, cols, flip * -lines])
    t = _qgis_affine(rows)
    ok, x, y = t.transform(250.0, -100.0)
    miss = np.hypot(x - (gt[0] + 2500), y - (gt[3] - 1000))
    assert (miss < 1e-6) if flip == 1 else (miss > 100)
