import numpy as np
import pytest
from rasters import textured

from promptmid.errors import InputError
from promptmid.io.rasters import downsample, raster_info, read_on_grid, read_pixels, work_grid


def test_raster_info_reads_georeference(make_raster):
    path = make_raster(np.zeros((3, 64, 80), np.uint16), nodata=0)
    info = raster_info(path)
    assert (info.width, info.height, info.bands, info.dtype) == (80, 64, 3, "UInt16")
    assert info.georeferenced and info.nodata == 0
    assert info.bounds == (500000.0, 4500000.0 - 640.0, 500800.0, 4500000.0)


def test_unreadable_files_give_input_errors(tmp_path):
    bad = tmp_path / "bad.tif"
    bad.write_bytes(b"this is not a tiff")
    with pytest.raises(InputError, match="bad.tif: not a readable raster"):
        raster_info(str(bad))
    with pytest.raises(InputError, match="file not found"):
        raster_info(str(tmp_path / "missing.tif"))


def test_work_grid_crops_to_overlap_and_caps_size(make_raster):
    opt = raster_info(make_raster(np.zeros((2000, 1000), np.uint8)))
    # SAR covers the right half of the optical footprint (same CRS here; a CRS mismatch is tested below).
    sar_gt_utm = (505000.0, 10.0, 0.0, 4500000.0, 0.0, -10.0)
    sar = raster_info(make_raster(np.ones((2000, 500), np.uint8), geotransform=sar_gt_utm))
    grid = work_grid(opt, sar, max_side=512)
    assert max(grid.width, grid.height) == 512
    assert grid.geotransform[0] == pytest.approx(505000.0)
    assert grid.width * grid.geotransform[1] == pytest.approx(5000.0)


def test_work_grid_refuses_no_overlap_and_ungeoreferenced_optical(make_raster):
    opt = raster_info(make_raster(np.zeros((100, 100), np.uint8)))
    far = raster_info(make_raster(np.zeros((100, 100), np.uint8), geotransform=(900000.0, 10.0, 0.0, 4500000.0, 0.0, -10.0)))
    with pytest.raises(InputError, match="No overlap"):
        work_grid(opt, far, 512)
    plain = raster_info(make_raster(np.zeros((100, 100), np.uint8), geotransform=None, epsg=None))
    with pytest.raises(InputError, match="no georeference"):
        work_grid(plain, opt, 512)
    # georeferenced, but only by GCPs (as a Sentinel-1 GRD is): no grid of its own for the output
    from osgeo import gdal

    gcps = [gdal.GCP(500000.0 + 10 * c, 4500000.0 - 10 * r, 0.0, c, r) for c in (0, 50, 100) for r in (0, 50, 100)]
    gcp_only = raster_info(gdal.Translate(opt.path.replace(".tif", "_gcps.tif"), opt.path, GCPs=gcps,
                                          outputSRS="EPSG:32633").GetDescription())
    assert gcp_only.georeferenced and gcp_only.geotransform is None
    with pytest.raises(InputError, match="georeferenced only by GCPs or RPCs; warp it"):
        work_grid(gcp_only, opt, 512)


def test_read_on_grid_reprojects_and_masks_nodata(make_raster):
    img = (textured(128, 128) * 200 + 10).astype(np.uint8)
    img[:, :20] = 0
    path = make_raster(img, nodata=0)
    grid = work_grid(raster_info(path), None, 512)
    bands, valid = read_on_grid(path, grid)
    assert bands.shape == (1, 128, 128) and bands.dtype == np.float32
    np.testing.assert_array_equal(bands[0][valid], img[valid].astype(np.float32))
    assert not valid[:, :20].any() and valid[:, 21:].all()


def test_read_pixels_handles_float_nan_and_downsampling(make_raster):
    arr = textured(200, 100).astype(np.float32)
    arr[0, 0] = np.nan
    arr[5, 5] = np.inf
    bands, valid, factor = read_pixels(make_raster(arr, geotransform=None, epsg=None), max_side=50)
    assert bands.shape == (1, 50, 25) and factor == pytest.approx((4.0, 4.0))
    assert np.isfinite(bands).all() and not valid[0, 0]


def test_downsample_keeps_only_fully_valid_pixels():
    bands = np.ones((1, 8, 8), np.float32)
    valid = np.ones((8, 8), bool)
    valid[0, 0] = False
    (small, v), f = downsample(bands, valid, 4)
    assert small.shape == (1, 4, 4) and f == (2.0, 2.0)
    assert not v[0, 0] and v[1:, :].all()


def test_crs_mismatch_is_reprojected_onto_the_optical_grid(make_raster, tmp_path):
    from osgeo import gdal

    img = (textured(200, 200) * 200 + 20).astype(np.uint8)
    opt_path = make_raster(img)  # UTM 33N
    sar_path = str(tmp_path / "sar_wgs84.tif")
    gdal.Warp(sar_path, opt_path, dstSRS="EPSG:4326", resampleAlg="near")  # same ground, geographic CRS
    opt, sar = raster_info(opt_path), raster_info(sar_path)
    assert "4326" in sar.crs_wkt or "WGS 84" in sar.crs_wkt
    grid = work_grid(opt, sar, 512)
    assert grid.width >= 190 and grid.height >= 190  # the overlap is (almost) the whole optical footprint
    bands, valid = read_on_grid(sar_path, grid, resampling="near")
    ref, _ = read_on_grid(opt_path, grid, resampling="near")
    inner = valid.copy()
    inner[:10], inner[-10:], inner[:, :10], inner[:, -10:] = False, False, False, False
    assert inner.mean() > 0.8
    assert np.mean(bands[0][inner] == ref[0][inner]) > 0.8  # back on the optical grid, pixel for pixel
