import numpy as np
import pytest
from rasters import epsg_wkt
from osgeo import ogr

from promptmid.errors import RegistrationError
from promptmid.geometry.gcps import (GCPSet, polynomial_residuals, read_points_file, spread_subset,
                                     write_points_file, write_tiepoints_gpkg)


def _gcps(n=50, noise=0.0, seed=0):
    rng = np.random.default_rng(seed)
    px, ln = rng.uniform(0, 1000, n), rng.uniform(0, 800, n)
    mx = 400000 + 10 * px + 0.5 * ln + rng.normal(0, noise, n)
    my = 5000000 - 10 * ln + 0.2 * px + rng.normal(0, noise, n)
    return GCPSet(px, ln, mx, my, rng.uniform(0.5, 1, n), epsg_wkt(32632))


def test_residuals_zero_for_exact_affine_and_in_pixels_for_noise():
    dx, dy, res = polynomial_residuals(_gcps(), "affine")
    assert np.abs(dx).max() < 1e-6 and np.abs(res).max() < 1e-5
    dx, dy, res = polynomial_residuals(_gcps(noise=10.0), "affine")  # 10 map units = ~1 px
    assert 0.5 < np.sqrt(np.mean(dx ** 2 + dy ** 2)) < 1.6
    assert 7 < np.sqrt(np.mean(res ** 2)) < 14
    assert np.all(polynomial_residuals(_gcps(noise=10.0), "tps")[2] == 0)
    with pytest.raises(RegistrationError, match="too few"):
        polynomial_residuals(_gcps(n=5), "poly2")


@pytest.mark.parametrize("source", ["pixel", "layer"])
def test_points_file_round_trip(tmp_path, source):
    g = _gcps(noise=5.0)
    dx, dy, _ = polynomial_residuals(g, "affine")
    path = tmp_path / "a.points"
    gt = (100.0, 2.0, 0.0, 900.0, 0.0, -2.0)
    write_points_file(str(path), g, dx, dy, source, gt)
    lines = path.read_text().splitlines()
    assert lines[0].startswith("#CRS: PROJCS[") and "32632" in lines[0]
    assert lines[1] == "mapX,mapY,sourceX,sourceY,enable,dX,dY,residual"
    wkt, rows = read_points_file(str(path))
    assert rows.shape == (50, 7) and np.all(rows[:, 4] == 1)
    np.testing.assert_allclose(rows[:, 0], g.map_x, atol=1e-5)
    if source == "pixel":
        np.testing.assert_allclose(rows[:, 2], g.pixel, atol=1e-5)
        np.testing.assert_allclose(rows[:, 3], -g.line, atol=1e-5)  # y negative downward
    else:
        np.testing.assert_allclose(rows[:, 2], 100 + 2 * g.pixel, atol=1e-5)
        np.testing.assert_allclose(rows[:, 3], 900 - 2 * g.line, atol=1e-5)
    assert not list(tmp_path.glob(".*part*"))  # no temporary left behind


def test_tiepoints_geopackage_layers(tmp_path):
    g = _gcps(n=20)
    path = str(tmp_path / "t.gpkg")
    write_tiepoints_gpkg(path, g, np.arange(20.0), np.arange(20.0) * 10, g.map_x + 30, g.map_y - 40)
    ds = ogr.Open(path)
    pts, vec = ds.GetLayerByName("tie_points"), ds.GetLayerByName("match_vectors")
    assert pts.GetFeatureCount() == 20 and vec.GetFeatureCount() == 20
    assert "32632" in pts.GetSpatialRef().ExportToWkt()
    f = pts.GetFeature(3)
    assert f.GetField("residual_px") == pytest.approx(2.0)
    assert f.GetGeometryRef().GetX() == pytest.approx(g.map_x[2])
    assert vec.GetFeature(1).GetField("shift_map") == pytest.approx(50.0)


def test_spread_subset_covers_the_image():
    g = _gcps(n=2000)
    sub = spread_subset(g, 100, cells=5)
    assert len(sub) == 100
    cells = set(zip((sub.pixel // 200).astype(int), (sub.line // 160).astype(int)))
    assert len(cells) >= 24
