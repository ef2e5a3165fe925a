import numpy as np
from osgeo import gdal
from rasters import epsg_wkt

from promptmid.geometry.fit import apply_h
from promptmid.geometry.gcps import GCPSet
from promptmid.geometry.similarity import (fit_similarity, placed, placement_is_affine, similarity_residuals,
                                           similarity_warp_gcps)
from promptmid.geometry.warp import warp_with_gcps
from promptmid.io.rasters import Grid, raster_info

OPTICAL = Grid((300000.0, 5.0, 0.0, 4000000.0, 0.0, -5.0), 200, 200, epsg_wkt(32631))
TRUTH = np.array([[0.95 * np.cos(0.1), -0.95 * np.sin(0.1), 30.0], [0.95 * np.sin(0.1), 0.95 * np.cos(0.1), 12.0], [0, 0, 1]])


def _gcps(sar, optical: Grid, truth: np.ndarray, shear: float = 0.0, n: int = 60) -> GCPSet:
    """Tie points of a SAR placed by ``truth`` on the optical pixels, with an optional shear of their
    targets (errors an affine follows and a similarity does not)."""
    rng = np.random.default_rng(0)
    info = raster_info(sar)
    px, ln = rng.uniform(5, info.width - 5, n), rng.uniform(5, info.height - 5, n)
    dst = apply_h(truth, placed(info, optical, px, ln))
    dst[:, 0] += shear * (dst[:, 1] - dst[:, 1].mean())
    mx, my = optical.pixel_to_map(dst[:, 0], dst[:, 1])
    return GCPSet(px, ln, mx, my, np.ones(n), optical.crs_wkt)


def test_a_sar_without_georeference_gets_the_exact_similarity_through_an_affine(make_raster):
    sar = make_raster(np.zeros((120, 150), np.uint8), geotransform=None, epsg=None)
    info = raster_info(sar)
    gcps = _gcps(sar, OPTICAL, TRUTH)
    assert placement_is_affine(info, OPTICAL)
    assert np.allclose(fit_similarity(gcps, info, OPTICAL), TRUTH, atol=1e-9)
    dx, dy, res_map = similarity_residuals(gcps, info, OPTICAL)
    assert np.abs(dx).max() < 1e-6 and np.abs(dy).max() < 1e-6 and res_map.max() < 1e-5
    exact, model = similarity_warp_gcps(gcps, info, OPTICAL)
    assert model == "affine" and len(exact) == 25
    want = np.column_stack(OPTICAL.pixel_to_map(*apply_h(TRUTH, np.column_stack([exact.pixel, exact.line])).T))
    assert np.allclose(np.column_stack([exact.map_x, exact.map_y]), want, atol=1e-6)
    # Residuals read in SAR pixels: a GCP moved 2 optical px (= 2 / 0.95 SAR px) shows it.
    moved = GCPSet(gcps.pixel, gcps.line, gcps.map_x.copy(), gcps.map_y, gcps.similarity, gcps.crs_wkt)
    moved.map_x[0] += 2 * 5.0
    dx, _, res_map = similarity_residuals(moved, info, OPTICAL)
    assert 1.7 < abs(dx[0]) < 2.2 and res_map[0] > 8.0


def test_a_sar_in_another_crs_is_corrected_where_it_is_placed_through_a_spline(make_raster):
    # A SAR in geographic coordinates over the optical's UTM zone: its placement on the optical pixels
    # curves (reprojection), so the warp needs the dense spline to stay exact between its points.
    lon0, lat0 = 0.6, 36.1
    sar = make_raster(np.zeros((150, 150), np.uint8), geotransform=(lon0, 6e-5, 0.0, lat0, 0.0, -5e-5), epsg=4326)
    info = raster_info(sar)
    assert not placement_is_affine(info, OPTICAL)
    start = placed(info, OPTICAL, np.array([0.0]), np.array([0.0]))[0]
    optical = Grid((OPTICAL.pixel_to_map(start[0] - 20, start[1] - 20)[0], 5.0, 0.0,
                    OPTICAL.pixel_to_map(start[0] - 20, start[1] - 20)[1], 0.0, -5.0), 200, 200, OPTICAL.crs_wkt)
    gcps = _gcps(sar, optical, TRUTH)
    exact, model = similarity_warp_gcps(gcps, info, optical)
    assert model == "tps"
    ds = gdal.GetDriverByName("MEM").Create("", info.width, info.height, 1)
    ds.SetGCPs(exact.to_gdal(), exact.crs_wkt)
    tr = gdal.Transformer(ds, None, ["METHOD=GCP_TPS"])
    rng = np.random.default_rng(3)
    p = rng.uniform(0, 150, (50, 2))
    got = np.asarray(tr.TransformPoints(0, p.tolist())[0])[:, :2]
    want = np.column_stack(optical.pixel_to_map(*apply_h(TRUTH, placed(info, optical, p[:, 0], p[:, 1])).T))
    assert np.abs(got - want).max() < 0.05 * 5.0  # within 0.05 optical px


def test_the_similarity_warp_writes_the_similarity_not_the_affine_of_the_gcps(make_raster, tmp_path):
    # Each SAR pixel holds its own centre coordinates, so the warped bands read back where every output
    # pixel was sampled from.
    h, w = 120, 150
    rows, cols = np.mgrid[0:h, 0:w].astype(np.float32) + 0.5
    sar = make_raster(np.stack([cols, rows]), geotransform=None, epsg=None)
    gcps = _gcps(sar, OPTICAL, TRUTH, shear=0.03)
    sampled = {}
    for transform in ("similarity", "affine"):
        out = str(tmp_path / f"{transform}.tif")
        warp_with_gcps(sar, out, gcps, transform, "bilinear", OPTICAL, OPTICAL)
        ds = gdal.Open(out)
        assert ds.GetMetadataItem("PROMPTMID_TRANSFORM") == transform
        assert ds.GetMetadataItem("PROMPTMID_GCP_COUNT") == str(len(gcps))  # the tie points, not the exact grid
        sampled[transform] = ds.ReadAsArray()
    model = fit_similarity(gcps, raster_info(sar), OPTICAL)
    r, c = np.mgrid[60:120:7, 60:140:7]
    src = apply_h(np.linalg.inv(model), np.column_stack([c.ravel() + 0.5, r.ravel() + 0.5]))
    inside = (src[:, 0] > 2) & (src[:, 0] < w - 2) & (src[:, 1] > 2) & (src[:, 1] < h - 2)
    assert inside.sum() > 30
    # GDAL's warp itself samples within ~0.09 px of the exact position (approximate transformer, bilinear
    # weights): the same for exact GCPs of an affine.
    for transform, tol in (("similarity", 0.1), ("affine", None)):
        got = np.column_stack([sampled[transform][0][r.ravel(), c.ravel()], sampled[transform][1][r.ravel(), c.ravel()]])
        err = np.abs(got[inside] - src[inside]).max()
        if tol is not None:
            assert err < tol
        else:
            assert err > 0.5  # the affine follows the sheared tie points: the test tells the two apart


def test_placement_in_another_crs_matches_an_independent_reprojection(make_raster):
    """``placed`` against positions built here with osr alone: a geographic SAR over a UTM optical grid
    (corner convention on both sides; lon/lat in that order)."""
    from osgeo import osr

    lon0, lat0, dlon, dlat = 0.6, 36.1, 6e-5, -5e-5
    info = raster_info(make_raster(np.zeros((150, 150), np.uint8), geotransform=(lon0, dlon, 0.0, lat0, 0.0, dlat), epsg=4326))
    geo, utm = osr.SpatialReference(), osr.SpatialReference()
    geo.ImportFromEPSG(4326)
    utm.ImportFromEPSG(32631)
    for s in (geo, utm):
        s.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    to_utm = osr.CoordinateTransformation(geo, utm)
    px = np.array([0.0, 0.5, 75.25, 149.0, 150.0])
    ln = np.array([0.0, 0.5, 30.75, 149.0, 150.0])
    want = []
    for p, l in zip(px, ln):
        e, n, _ = to_utm.TransformPoint(lon0 + p * dlon, lat0 + l * dlat)
        want.append(((e - 300000.0) / 5.0, (4000000.0 - n) / 5.0))  # OPTICAL's pixel, corner convention
    got = placed(info, OPTICAL, px, ln)
    assert np.abs(got - np.array(want)).max() < 1e-6
