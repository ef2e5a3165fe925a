import json
import os

import numpy as np
import pytest
from rasters import textured, write_raster
from osgeo import gdal, ogr

from promptmid.config import EngineConfig, OutputConfig
from promptmid.demo import grid_error_px, misregister, run_demo
from promptmid.errors import InputError, RegistrationError, UncertainError
from promptmid.io.rasters import raster_info
from promptmid.pipeline import register, written_gcps, written_warp
from promptmid.progress import Progress


def _sha(path):
    import hashlib
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


def test_known_misregistration_of_a_real_image_is_recovered_below_one_pixel(s1s2_pair, tmp_path):
    """Real SAR image against itself: shift + rotate its georeference, register it back (< 1 px)."""
    sar = str(s1s2_pair / "sar.tif")
    bad = str(tmp_path / "sar_bad.tif")
    misregister(sar, bad, (17.3, -9.6), 1.2)
    before = {p: _sha(p) for p in (sar, bad)}
    result = register(sar, bad, str(tmp_path / "out"))
    assert {p: _sha(p) for p in (sar, bad)} == before  # inputs untouched
    truth = raster_info(sar).geotransform
    assert grid_error_px(truth, raster_info(bad).geotransform, 1024, 1024) > 15
    assert result.transform == "similarity"  # the default: the model the engine fits
    assert not any("not Helmert" in w for w in result.warnings)  # same CRS, a geotransform: Helmert in QGIS is ours
    assert grid_error_px(truth, written_warp(result, sar, bad), 1024, 1024) < 1.0
    assert result.verdict == "registered" and result.confidence >= 0.5 and result.verdict_reason == ""
    assert 0 < result.expected_error_px < 0.5  # many exact tie points: the transform is known well
    report = json.load(open(result.outputs["report"]))
    assert report["verdict"] == "registered" and report["evidence"]["n_inliers"] >= 50
    assert report["search"]["scale"] == pytest.approx(1.0, abs=0.05) and not report["accepted_uncertain"]
    warped = gdal.Open(result.outputs["warped"])
    assert warped.GetGeoTransform() == pytest.approx(truth)  # on the reference grid
    a, b = warped.ReadAsArray().astype(float), gdal.Open(sar).ReadAsArray().astype(float)
    inner = (slice(100, -100), slice(100, -100))
    assert np.corrcoef(a[inner].ravel(), b[inner].ravel())[0, 1] > 0.9


def test_demo_registers_real_sar_onto_optical(data_root, tmp_path):
    d = run_demo(str(data_root), str(tmp_path / "demo"))
    assert d.error_before_px > 25
    # Against the data set's own S1/S2 alignment (good to a few px, see README), not a perfect truth.
    assert d.error_after_px < 5.0
    r = d.registration
    assert r.n_inliers >= 50 and r.n_gcps == min(r.n_inliers, 400)
    ds = ogr.Open(r.outputs["tiepoints"])
    assert ds.GetLayerByName("tie_points").GetFeatureCount() == r.n_gcps
    assert ds.GetLayerByName("match_vectors").GetFeatureCount() == r.n_gcps
    report = json.load(open(r.outputs["report"]))
    assert report["n_gcps"] == r.n_gcps and report["engine"] == "dense"  # the default engine is the shipped (dense) model
    out = gdal.Open(r.outputs["warped"])
    assert "World Mercator" in out.GetProjection() or "3395" in out.GetProjection()


@pytest.mark.parametrize("transform", ["poly2", "tps"])
def test_other_transforms_and_ungeoreferenced_sar(s1s2_pair, tmp_path, transform):
    plain = write_raster(tmp_path / "plain.tif", gdal.Open(str(s1s2_pair / "sar.tif")).ReadAsArray(), geotransform=None, epsg=None)
    result = register(str(s1s2_pair / "sar.tif"), plain, str(tmp_path / "o"), out_cfg=OutputConfig(transform=transform))
    assert result.n_gcps >= 50 and result.verdict == "registered"
    if transform == "tps":  # a TPS passes through its GCPs: its residuals are leave-one-out, never all zero
        assert result.rmse_px > 0.01
        assert result.rmse_kind == "leave-one-out" or (result.transform == "affine" and "replaced by affine" in result.warnings[0])
    # The same pixels with and without georeference: every GCP must put a pixel where the true
    # georeference does (pixel/line of the plain file -> map), not merely exist.
    gt = raster_info(str(s1s2_pair / "sar.tif")).geotransform
    g = written_gcps(result, plain)
    err = np.hypot(gt[0] + g.pixel * gt[1] + g.line * gt[2] - g.map_x, gt[3] + g.pixel * gt[4] + g.line * gt[5] - g.map_y) / abs(gt[1])
    assert np.median(err) < 0.5 and np.percentile(err, 95) < 1.5
    ds = ogr.Open(result.outputs["tiepoints"])  # keep the DataSource alive while its layers are used
    assert [ds.GetLayer(i).GetName() for i in range(ds.GetLayerCount())] == ["tie_points"]  # no SAR georef: no vectors


def test_bad_inputs_give_clear_errors_and_no_outputs(make_raster, tmp_path, s1s2_pair):
    opt = make_raster((textured() * 255).astype(np.uint8))
    out = tmp_path / "out"
    with pytest.raises(InputError, match="same file"):
        register(opt, opt, str(out))
    far = make_raster((textured() * 255).astype(np.uint8), geotransform=(900000.0, 10.0, 0, 4500000.0, 0, -10.0))
    with pytest.raises(InputError, match="No overlap"):
        register(opt, far, str(out))
    empty = make_raster(np.zeros((256, 256), np.uint8), nodata=0)
    with pytest.raises(InputError, match="only nodata"):
        register(opt, empty, str(out))
    tiny = make_raster(np.ones((40, 40), np.uint8))
    with pytest.raises(InputError, match="too small"):
        register(opt, tiny, str(out))
    noise = make_raster(np.random.default_rng(0).integers(1, 255, (256, 256)).astype(np.uint8))
    with pytest.raises(RegistrationError, match="Uncertain registration, nothing written|Could not register"):
        register(opt, noise, str(out))  # noise against a scene: no transform is invented
    assert not out.exists() or not any(out.iterdir())


def test_unwritable_output_folder_is_an_output_error(s1s2_pair, tmp_path):
    from promptmid.errors import OutputError

    blocker = tmp_path / "file"
    blocker.write_text("x")  # a folder cannot be created under a file (root ignores chmod, this it cannot)
    with pytest.raises(OutputError, match="not writable"):
        register(str(s1s2_pair / "optical.tif"), str(s1s2_pair / "sar.tif"), str(blocker / "out"), EngineConfig(engine="default", accept_uncertain=True))


@pytest.mark.parametrize("kind", ["uint16_linear", "float_db", "rgbn_optical"])
def test_radiometry_variants_register(s1s2_pair, tmp_path, kind):
    """16-bit linear and float dB SAR, and a 4-band optical, register like the 8-bit originals."""
    ds_s, ds_o = gdal.Open(str(s1s2_pair / "sar.tif")), gdal.Open(str(s1s2_pair / "optical.tif"))
    gt, wkt = ds_s.GetGeoTransform(), ds_s.GetProjection()
    sar = ds_s.ReadAsArray().astype(np.float64)
    optical = str(s1s2_pair / "optical.tif")
    sar_path = str(s1s2_pair / "sar.tif")
    db = (sar / 255.0) * 30.0 - 25.0  # the 8-bit rendering back to a plausible dB range
    if kind == "uint16_linear":
        sar_path = write_raster(tmp_path / "sar16.tif", np.clip(10 ** (db / 10) * 10000, 1, 65535).astype(np.uint16), gt, wkt=wkt)
    elif kind == "float_db":
        sar_path = write_raster(tmp_path / "sardb.tif", db.astype(np.float32), gt, nodata=-9999.0, wkt=wkt)
    else:
        rgb = ds_o.ReadAsArray()
        optical = write_raster(tmp_path / "rgbn.tif", np.concatenate([rgb, rgb[:1]]), ds_o.GetGeoTransform(), wkt=ds_o.GetProjection())
    r = register(optical, sar_path, str(tmp_path / "o"), EngineConfig(engine="default", accept_uncertain=True))
    assert r.n_inliers >= 30


def test_cancel_stops_the_run_and_leaves_no_outputs(s1s2_pair, tmp_path):
    from promptmid.errors import CancelledError

    calls = []

    def cancelled():
        calls.append(1)
        return len(calls) > 3

    with pytest.raises(CancelledError):
        register(str(s1s2_pair / "optical.tif"), str(s1s2_pair / "sar.tif"), str(tmp_path / "o"), progress=Progress(is_cancelled=cancelled))
    assert not (tmp_path / "o").exists() or not any((tmp_path / "o").iterdir())


def test_sar_georeferenced_only_by_gcps_is_placed_through_them(s1s2_pair, tmp_path):
    """Sentinel-1 GRD as distributed carries GCPs, no geotransform: the SAR must be placed through its GCPs
    (GDAL's GCP transformer), not matched in its own pixel grid. The GCPs here are the true georeference
    of a real S1 image, misplaced by a known shift and rotation."""
    from promptmid.demo import misregister

    sar = str(s1s2_pair / "sar.tif")
    shifted = str(tmp_path / "shifted.tif")
    misregister(sar, shifted, (21.0, -12.5), 1.0)  # the known error, as a geotransform first
    bad_gt = raster_info(shifted).geotransform
    cols, rows = np.meshgrid(np.linspace(0, 1024, 6), np.linspace(0, 1024, 6))
    gcps = [gdal.GCP(bad_gt[0] + c * bad_gt[1] + r * bad_gt[2], bad_gt[3] + c * bad_gt[4] + r * bad_gt[5], 0.0, c, r)
            for c, r in zip(cols.ravel(), rows.ravel())]
    gcp_only = str(tmp_path / "sar_gcps.tif")
    gdal.Translate(gcp_only, sar, GCPs=gcps, outputSRS=gdal.Open(sar).GetProjection())
    info = raster_info(gcp_only)
    assert info.geotransform is None and info.georef_method == "gcps" and info.georeferenced
    truth = raster_info(sar).geotransform
    assert grid_error_px(truth, bad_gt, 1024, 1024) > 15
    result = register(str(s1s2_pair / "optical.tif"), gcp_only, str(tmp_path / "out"))
    # against the data set's own S1/S2 alignment (a few px, see README), as the demo; the similarity is
    # applied after the SAR's GCP placement (exact GCPs through a spline)
    assert grid_error_px(truth, written_warp(result, str(s1s2_pair / "optical.tif"), gcp_only), 1024, 1024) < 5.0
    assert any("not Helmert" in w for w in result.warnings)  # QGIS would fit its similarity in the SAR's pixels
    ds = ogr.Open(result.outputs["tiepoints"])
    assert ds.GetLayerByName("match_vectors").GetFeatureCount() == result.n_gcps  # SAR map positions via its GCPs


def test_uncertain_results_are_refused_unless_accepted(s1s2_pair, tmp_path):
    """An uncertain verdict writes nothing (exit 3 in the CLI) unless the user accepts it; then the outputs
    are written and the report and summary say it is uncertain, and why."""
    from promptmid.verdict import VerdictConfig

    # no real pose is that unambiguous (the SAR is georeferenced: the near-georeference thresholds apply)
    strict = EngineConfig(engine="area", verdict_georef=VerdictConfig(min_peak_ratio=50.0))
    out = tmp_path / "refused"
    with pytest.raises(UncertainError, match=r"Uncertain registration, nothing written \(confidence 0\.\d\d; \d+ of \d+ tie points consistent\): the best pose barely stands out"):
        register(str(s1s2_pair / "optical.tif"), str(s1s2_pair / "sar.tif"), str(out), strict)
    assert not out.exists() or not any(out.iterdir())
    strict.accept_uncertain = True
    result = register(str(s1s2_pair / "optical.tif"), str(s1s2_pair / "sar.tif"), str(tmp_path / "kept"), strict)
    assert result.verdict == "uncertain" and "barely stands out" in result.verdict_reason
    ev = result.evidence  # the counts a user reads are the verdict's, not the refined pass's (all consistent by construction)
    assert result.summary().startswith("UNCERTAIN (") and f"{ev['n_inliers']} of {ev['n_tie_points']} tie points consistent" in result.summary()
    report = json.load(open(result.outputs["report"]))
    assert report["verdict"] == "uncertain" and report["accepted_uncertain"] and report["verdict_reason"]
    assert report["evidence"] == ev and 0 < ev["n_inliers"] <= ev["n_tie_points"]
    assert os.path.isfile(result.outputs["warped"])


def test_crs_mismatch_gcps_land_where_the_sar_georeference_puts_them(make_raster, tmp_path):
    """UTM optical, the same ground as an EPSG:4326 SAR: GCP map positions (UTM) must agree with the SAR
    pixel -> its own georeference -> reprojected to UTM, to a pixel."""
    from promptmid.io.rasters import pixel_to_map, transform_points

    img = (textured(256, 256, seed=3) * 200 + 20).astype(np.uint8)
    opt_path = make_raster(img)  # UTM 33N, 10 m
    sar_path = str(tmp_path / "sar_wgs84.tif")
    gdal.Warp(sar_path, opt_path, dstSRS="EPSG:4326", resampleAlg="bilinear")
    result = register(opt_path, sar_path, str(tmp_path / "o"), EngineConfig(engine="area", accept_uncertain=True))
    sar = raster_info(sar_path)
    g = written_gcps(result, sar_path)
    lon, lat = pixel_to_map(sar, g.pixel, g.line)
    x, y = transform_points(lon, lat, sar.crs_wkt, raster_info(opt_path).crs_wkt)
    err = np.hypot(x - g.map_x, y - g.map_y) / 10.0  # optical pixels
    assert len(err) >= 30 and np.median(err) < 0.5 and err.max() < 2.0


def test_multiband_sar_band_choice_is_used_and_reported(s1s2_pair, tmp_path):
    """A dual-pol-like stack (band 1: noise, band 2: the real SAR): band 2 registers, 'mean' is accepted and
    named in the report, a band that does not exist is a clear input error."""
    ds = gdal.Open(str(s1s2_pair / "sar.tif"))
    sar = ds.ReadAsArray()
    noise = np.random.default_rng(0).integers(1, 255, sar.shape).astype(np.uint8)
    stack = write_raster(tmp_path / "stack.tif", np.stack([noise, sar]), geotransform=ds.GetGeoTransform(), wkt=ds.GetProjection())
    optical = str(s1s2_pair / "optical.tif")
    # near its georeference the verdict is strict (README): kept either way, band 2 must give a real fit
    result = register(optical, stack, str(tmp_path / "b2"), EngineConfig(engine="default", sar_band="2", accept_uncertain=True))
    report = json.load(open(result.outputs["report"]))
    assert result.n_inliers >= 300 and report["sar_band"] == "2" and report["sar_band_meaning"] == "band 2"
    with pytest.raises(RegistrationError):  # band 1 is noise: nothing to claim
        register(optical, stack, str(tmp_path / "b1"), EngineConfig(engine="default", sar_band="1"))
    mean = register(optical, stack, str(tmp_path / "mean"), EngineConfig(engine="default", sar_band="mean", accept_uncertain=True))
    assert json.load(open(mean.outputs["report"]))["sar_band_meaning"] == "mean of all bands"
    with pytest.raises(InputError, match="has 2 band"):
        register(optical, stack, str(tmp_path / "b3"), EngineConfig(engine="area", sar_band="3"))
