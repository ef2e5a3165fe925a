import numpy as np
from rasters import epsg_wkt, textured
from osgeo import gdal

from promptmid.geometry.gcps import GCPSet
from promptmid.geometry.warp import warp_with_gcps
from promptmid.io.rasters import Grid


def test_warp_with_exact_gcps_reproduces_the_true_georeference(make_raster, tmp_path):
    img = (textured(200, 200) * 250).astype(np.uint8) + 1
    sar = make_raster(img, geotransform=None, epsg=None)
    truth = (300000.0, 5.0, 0.0, 4000000.0, 0.0, -5.0)
    rng = np.random.default_rng(0)
    px, ln = rng.uniform(0, 200, 30), rng.uniform(0, 200, 30)
    g = GCPSet(px, ln, truth[0] + 5 * px, truth[3] - 5 * ln, np.ones(30), epsg_wkt(32631))
    for transform in ("affine", "poly2", "tps"):
        out = str(tmp_path / f"w_{transform}.tif")
        warp_with_gcps(sar, out, g, transform, "near", Grid(truth, 200, 200, epsg_wkt(32631)))
        ds = gdal.Open(out)
        assert ds.GetGeoTransform() == truth
        assert "32631" in ds.GetProjection()
        warped = ds.ReadAsArray()
        assert np.mean(warped[5:-5, 5:-5] == img[5:-5, 5:-5]) > 0.98
        assert ds.GetMetadataItem("PROMPTMID_TRANSFORM") == transform


def test_float_sar_nodata_becomes_nan(make_raster, tmp_path):
    arr = textured(100, 100).astype(np.float32)
    sar = make_raster(arr, geotransform=None, epsg=None)
    px, ln = np.array([0, 100, 0, 100, 50.0]), np.array([0, 0, 100, 100, 50.0])
    g = GCPSet(px, ln, 1000 + px, 2000 - ln, np.ones(5), epsg_wkt(32631))
    out = str(tmp_path / "w.tif")
    warp_with_gcps(sar, out, g, "affine", "bilinear", Grid((950.0, 1.0, 0.0, 2000.0, 0.0, -1.0), 200, 100, epsg_wkt(32631)))
    a = gdal.Open(out).ReadAsArray()
    assert np.isnan(a[:, :40]).all() and np.isfinite(a[10:90, 60:140]).all()


def _identity_gcps(n=100):
    px, ln = np.array([0, n, 0, n, n / 2]), np.array([0, 0, n, n, n / 2])
    return GCPSet(px, ln, 1000 + px, 2000 - ln, np.ones(5), epsg_wkt(32631))


def test_real_zeros_of_an_integer_sar_without_nodata_stay_data(make_raster, tmp_path):
    img = (textured(100, 100) * 200).astype(np.uint8)
    img[40:60, 40:60] = 0  # dark water: real data, and the raster declares no nodata
    sar = make_raster(img, geotransform=None, epsg=None)
    out = str(tmp_path / "w.tif")
    warp_with_gcps(sar, out, _identity_gcps(), "affine", "near", Grid((950.0, 1.0, 0.0, 2000.0, 0.0, -1.0), 200, 100, epsg_wkt(32631)))
    ds = gdal.Open(out)
    band = ds.GetRasterBand(1)
    a = band.ReadAsArray()
    assert band.GetNoDataValue() == 255 and band.DataType == gdal.GDT_Byte  # a value the data does not use
    assert (a[45:55, 95:105] == 0).all()  # the zeros survive as data
    assert (a[:, :40] == 255).all()  # outside the SAR: nodata


def test_an_integer_sar_using_every_value_gets_a_wider_output(make_raster, tmp_path):
    img = (np.arange(100 * 100) % 256).astype(np.uint8).reshape(100, 100)
    sar = make_raster(img, geotransform=None, epsg=None)
    out = str(tmp_path / "w.tif")
    warp_with_gcps(sar, out, _identity_gcps(), "affine", "near", Grid((950.0, 1.0, 0.0, 2000.0, 0.0, -1.0), 200, 100, epsg_wkt(32631)))
    ds = gdal.Open(out)  # keep the dataset alive while its band is used
    band = ds.GetRasterBand(1)
    a = band.ReadAsArray()
    assert band.DataType == gdal.GDT_Int16 and band.GetNoDataValue() == -1
    assert (a[:, :40] == -1).all() and a[:, 60:140].min() == 0 and a[:, 60:140].max() == 255
