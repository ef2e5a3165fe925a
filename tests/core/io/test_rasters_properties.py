"""Property-based tests of the raster I/O stage: random shapes, data types, band counts, nodata and
NaN/inf, georeferences. Whatever the file, reading gives finite float32 data, a mask that is exactly
"has data", the input values where valid, and never touches the file."""

import hashlib
import os
import tempfile

import numpy as np
from hypothesis import given, settings, strategies as st
from rasters import write_raster

from promptmid.io.rasters import raster_info, read_on_grid, read_pixels, work_grid

DTYPES = ["uint8", "uint16", "int16", "float32", "float64"]


@st.composite
def rasters(draw, min_side: int = 2):
    dtype = np.dtype(draw(st.sampled_from(DTYPES)))
    bands = draw(st.integers(1, 4))
    h, w = draw(st.integers(min_side, 48)), draw(st.integers(min_side, 48))
    rng = np.random.default_rng(draw(st.integers(0, 2**31 - 1)))
    hi = 250 if dtype == np.uint8 else 4000
    data = rng.uniform(1 if dtype.kind == "u" else -hi, hi, (bands, h, w)).astype(dtype)
    nodata = draw(st.sampled_from([None, 0.0, -9999.0, "nan"] if dtype.kind == "f" else [None, 0.0, 255.0]))
    nodata = float("nan") if nodata == "nan" else nodata
    holes = rng.random((h, w)) < draw(st.floats(0.0, 0.8))
    if nodata is not None:
        data[:, holes] = nodata if not (dtype.kind == "u" and nodata < 0) else 0
    if dtype.kind == "f" and draw(st.booleans()):
        data[0, rng.random((h, w)) < 0.1] = rng.choice([np.nan, np.inf, -np.inf])
    return data, nodata


def _expected_valid(data: np.ndarray, nodata) -> np.ndarray:
    valid = np.isfinite(data[0].astype(np.float64))
    if nodata is not None:
        valid &= np.isfinite(data[0]) if np.isnan(nodata) else data[0] != nodata
    for b in data[1:]:
        valid &= np.isfinite(b.astype(np.float64))
    return valid


def _digest(path: str) -> str:
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


@settings(max_examples=60, deadline=None)
@given(rasters())
def test_read_pixels_gives_finite_float32_and_an_exact_data_mask(r):
    data, nodata = r
    with tempfile.TemporaryDirectory() as d:
        path = write_raster(os.path.join(d, "x.tif"), data, nodata=nodata)
        before = _digest(path)
        arr, valid, factor = read_pixels(path)
        assert arr.dtype == np.float32 and arr.shape == data.shape and factor == (1.0, 1.0)
        assert np.isfinite(arr).all()
        first = read_pixels(path, bands=[1])[1]  # nodata is a per-band flag: band 1 decides, like GDAL
        assert np.array_equal(first, _expected_valid(data[:1], nodata))
        ok = valid
        assert np.allclose(arr[:, ok], data[:, ok].astype(np.float32), rtol=1e-6, equal_nan=False)
        assert _digest(path) == before


@settings(max_examples=40, deadline=None)
@given(rasters(), st.integers(2, 20))
def test_downsampled_reads_respect_max_side(r, max_side):
    data, nodata = r
    with tempfile.TemporaryDirectory() as d:
        path = write_raster(os.path.join(d, "x.tif"), data, nodata=nodata)
        arr, valid, factor = read_pixels(path, max_side=max_side)
        if max(data.shape[1:]) > max_side:
            assert max(arr.shape[1:]) == max_side
        else:
            assert arr.shape == data.shape and factor == (1.0, 1.0)
        # per-axis factors are exact: the downsampled grid covers the raster edge to edge
        assert np.allclose(np.array(arr.shape[:0:-1]) * np.array(factor), data.shape[:0:-1])
        assert valid.shape == arr.shape[1:] and np.isfinite(arr).all()


@settings(max_examples=40, deadline=None)
@given(rasters(min_side=32), st.floats(-5, 5), st.floats(-5, 5), st.sampled_from([1.0, 10.0, 30.0]))
def test_reading_onto_its_own_grid_is_the_identity(r, ox, oy, px):
    data, nodata = r
    gt = (500000.0 + ox * px, px, 0.0, 4500000.0 + oy * px, 0.0, -px)
    with tempfile.TemporaryDirectory() as d:
        path = write_raster(os.path.join(d, "x.tif"), data, nodata=nodata, geotransform=gt)
        before = _digest(path)
        info = raster_info(path)
        grid = work_grid(info, None, max_side=10**6)
        assert (grid.width, grid.height) == (info.width, info.height) and np.allclose(grid.geotransform, gt)
        arr, valid = read_on_grid(path, grid, bands=[1], resampling="near")
        expect = _expected_valid(data[:1], nodata)
        assert np.array_equal(valid, expect)
        assert np.allclose(arr[0][valid], data[0][valid].astype(np.float32), rtol=1e-6)
        assert _digest(path) == before


@settings(max_examples=60, deadline=None)
@given(st.integers(64, 3000), st.integers(64, 3000), st.integers(-2000, 2000), st.integers(-2000, 2000),
       st.integers(64, 3000), st.integers(64, 3000), st.integers(32, 1024))
def test_work_grid_stays_inside_the_overlap_and_under_max_side(ow, oh, sx, sy, sw, sh, max_side):
    """Header-only rasters of any size and offset: the work grid is inside both footprints (to one optical
    pixel, as it snaps outward to whole pixels), at most max_side, and refuses when they do not overlap."""
    from promptmid.errors import InputError
    from promptmid.io.rasters import RasterInfo
    from rasters import epsg_wkt

    wkt = epsg_wkt(32633)
    opt = RasterInfo("o.tif", ow, oh, 3, "Byte", (500000.0, 10.0, 0.0, 4500000.0, 0.0, -10.0), wkt, None)
    sar = RasterInfo("s.tif", sw, sh, 1, "Float32", (500000.0 + sx * 10.0, 10.0, 0.0, 4500000.0 - sy * 10.0, 0.0, -10.0), wkt, None)
    cw, ch = min(ow, sx + sw) - max(0, sx), min(oh, sy + sh) - max(0, sy)
    try:
        g = work_grid(opt, sar, max_side)
    except InputError as exc:
        assert cw < 32 or ch < 32, exc
        return
    assert cw >= 32 and ch >= 32
    assert max(g.width, g.height) <= max_side
    xmin, ymax = g.geotransform[0], g.geotransform[3]
    xmax, ymin = xmin + g.width * g.geotransform[1], ymax + g.height * g.geotransform[5]
    assert xmin >= 500000.0 + max(0, sx) * 10.0 - 1e-6 and xmax <= 500000.0 + min(ow, sx + sw) * 10.0 + 1e-6
    assert ymax <= 4500000.0 - max(0, sy) * 10.0 + 1e-6 and ymin >= 4500000.0 - min(oh, sy + sh) * 10.0 - 1e-6
