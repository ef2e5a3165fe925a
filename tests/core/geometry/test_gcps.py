import numpy as np
import pytest
from rasters import epsg_wkt
from osgeo import ogr

from promptmid.errors import RegistrationError
from promptmid.geometry.gcps import (GCPSet, fit_tps, gcps_from_points_file, loo_residuals, polynomial_residuals,
                                     read_points_file, resolve_points_source, spread_subset, write_points_file,
                                     write_tiepoints_gpkg)


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
    assert np.all(polynomial_residuals(_gcps(noise=10.0), "tps")[2] > 0)  # leave-one-out, not the spline's zeros
    with pytest.raises(RegistrationError, match="too few"):
        polynomial_residuals(_gcps(n=5), "poly2")


@pytest.mark.parametrize("source", ["pixel", "layer"])
def test_points_file_round_trip(tmp_path, source):
    g = _gcps(noise=5.0)
    dx, dy, _ = polynomial_residuals(g, "affine")
    path = tmp_path / "a.points"
    gt = (100.0, 2.0, 0.0, 900.0, 0.0, -2.0)
    assert write_points_file(str(path), g, dx, dy, source, gt) == source
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


def _brute_force_loo(g, predict):
    """Leave-one-out by refitting without each GCP: the definition the closed forms must reproduce."""
    out = []
    for i in range(len(g)):
        keep = np.arange(len(g)) != i
        out.append(predict(g.subset(keep), g.pixel[i:i + 1], g.line[i:i + 1])[0] - [g.map_x[i], g.map_y[i]])
    return np.linalg.norm(np.array(out), axis=1)


@pytest.mark.parametrize("transform", ["affine", "poly2", "tps"])
def test_leave_one_out_matches_refitting(transform):
    from promptmid.geometry.gcps import eval_polynomial, fit_polynomial

    g = _gcps(n=25, noise=20.0, seed=3)
    predict = {
        "affine": lambda s, p, l: eval_polynomial(fit_polynomial(s, 1), p, l),
        "poly2": lambda s, p, l: eval_polynomial(fit_polynomial(s, 2), p, l),
        "tps": lambda s, p, l: fit_tps(s)(p, l),
    }[transform]
    _, _, res_map = loo_residuals(g, transform)
    np.testing.assert_allclose(res_map, _brute_force_loo(g, predict), rtol=1e-5, atol=1e-6)
    if transform != "tps":  # LOO is always at least the fit residual
        assert np.all(res_map >= polynomial_residuals(g, transform)[2] - 1e-9)


def test_tps_interpolates_and_its_residuals_are_cross_validated():
    g = _gcps(n=40, noise=10.0, seed=1)
    np.testing.assert_allclose(fit_tps(g)(g.pixel, g.line), np.column_stack([g.map_x, g.map_y]), atol=1e-4)
    dx, dy, res = polynomial_residuals(g, "tps")
    # 10 map units of noise on a 10 m/px affine: a spline through noisy points errs by more than 1 px at unseen ones
    assert np.sqrt(np.mean(dx ** 2 + dy ** 2)) > 1.0 and np.all(np.isfinite(res))
    exact = _gcps(n=40, seed=1)  # an exact affine is inside the spline's model: LOO error ~0
    assert polynomial_residuals(exact, "tps")[2].max() < 1e-3


def test_points_source_rule_and_gcp_only_rasters(tmp_path):
    gt = (100.0, 2.0, 0.1, 900.0, 0.2, -2.0)  # rotated: all six terms count
    assert resolve_points_source("auto", gt) == "layer"
    assert resolve_points_source("auto", None) == "pixel"
    assert resolve_points_source("layer", None) == "pixel"  # GCP-only SAR: the Georeferencer works in its pixels
    assert resolve_points_source("pixel", gt) == "pixel"
    with pytest.raises(ValueError):
        resolve_points_source("map", gt)
    g = _gcps(n=10)
    z = np.zeros(10)
    path = str(tmp_path / "g.points")
    assert write_points_file(path, g, z, z, "layer", None) == "pixel"
    back = gcps_from_points_file(path)
    np.testing.assert_allclose(back.line, g.line, atol=1e-5)


def test_points_file_known_coordinates(tmp_path):
    """A GCP at the known SAR pixel (col 10, row 20) of a known geotransform: exact expected columns."""
    gt = (500000.0, 10.0, 0.0, 4000000.0, 0.0, -10.0)
    g = GCPSet(np.array([10.0, 300.0, 50.0]), np.array([20.0, 40.0, 500.0]), np.array([1.0, 2.0, 3.0]),
               np.array([4.0, 5.0, 6.0]), np.ones(3), epsg_wkt(32632))
    z = np.zeros(3)
    write_points_file(str(tmp_path / "l.points"), g, z, z, "auto", gt)
    write_points_file(str(tmp_path / "p.points"), g, z, z, "auto", None)
    _, layer = read_points_file(str(tmp_path / "l.points"))
    _, pixel = read_points_file(str(tmp_path / "p.points"))
    assert tuple(layer[0, 2:4]) == (500100.0, 3999800.0)  # x = 500000 + 10 * 10, y = 4000000 - 20 * 10
    assert tuple(pixel[0, 2:4]) == (10.0, -20.0)  # y negative downward
    rot = (500000.0, 9.0, 1.0, 4000000.0, 1.5, -9.0)
    write_points_file(str(tmp_path / "r.points"), g, z, z, "layer", rot)
    back = gcps_from_points_file(str(tmp_path / "r.points"), rot)
    np.testing.assert_allclose(np.column_stack([back.pixel, back.line]), np.column_stack([g.pixel, g.line]), atol=1e-5)
