"""The staged pair matcher on real pairs: a known warp recovered, and no transform invented."""

import cv2
import numpy as np
import pytest

from promptmid.config import EngineConfig
from promptmid.descriptors.registry import get_describer
from promptmid.errors import InputError
from promptmid.evaluation.protocol import check_grid, warp_optical
from promptmid.geometry.fit import apply_h
from promptmid.io.rasters import read_pixels
from promptmid.registration import PairMatch, prepare_and_match


def _known_warp(angle, scale, shift=(0.0, 0.0)):
    m = cv2.getRotationMatrix2D((127.5, 127.5), angle, scale)
    m[:, 2] += shift
    return np.vstack([m, [0, 0, 1]])


# The default model's own (train-calibrated) thresholds bound pass 1's shear at 0.99 px, and
# 3mos_SEN_rural_05's right fit shears 1.1 px (uncertain): the default is held to a claim on a water tile
# it claims under three different warps (confidence 0.67-0.78), so a lost claim shows here.
@pytest.mark.parametrize("engine, pair, land_use", [("area", "3mos_SEN_rural_05", "farmland"), ("default", "3mos_SEN_water_06", "water")])
def test_a_known_warp_of_a_real_pair_is_recovered_and_claimed(data_root, engine, pair, land_use):
    opt, ov, _ = read_pixels(str(data_root / "test" / pair / "optical.tif"))
    sar, sv, _ = read_pixels(str(data_root / "test" / pair / "sar.tif"))
    truth = _known_warp(-7.0, 0.88, (4.0, -3.0))
    ow, owv = warp_optical(opt, ov, truth)
    pm = prepare_and_match(ow, owv, sar, sv, "Byte", get_describer(engine), EngineConfig(engine=engine, land_use=land_use))
    assert pm.search is not None and pm.verdict is not None
    g = check_grid(256, 256, 10)
    err = np.sqrt(np.mean(np.sum((apply_h(pm.fit.matrix, g) - apply_h(truth, g)) ** 2, axis=1)))
    assert err < 3.0, err
    assert pm.verdict.verdict == "registered", pm.verdict.reason
    assert pm.n_inliers >= 30 and set(pm.timings) >= {"prepare", "dense", "search", "guided", "fit_verdict"}


def test_unrelated_images_are_not_claimed(small_pair, data_root):
    opt, ov, _ = read_pixels(str(small_pair / "optical.tif"))
    other, other_valid, _ = read_pixels(str(data_root / "test" / "3mos_GF3_water_05" / "sar.tif"))
    pm = prepare_and_match(opt, ov, other, other_valid, "Byte", get_describer("area"), EngineConfig(engine="area"))
    assert pm.verdict.verdict in ("uncertain", "failed") and pm.verdict.reason


def test_a_constant_image_is_refused_not_matched(small_pair):
    opt, ov, _ = read_pixels(str(small_pair / "optical.tif"))
    flat = np.full((1, 256, 256), 90.0, np.float32)
    with pytest.raises(InputError, match="constant"):
        prepare_and_match(opt, ov, flat, np.ones((256, 256), bool), "Byte", get_describer("area"), EngineConfig(engine="area"))


def test_a_nearly_constant_image_gets_no_claimed_transform(small_pair):
    opt, ov, _ = read_pixels(str(small_pair / "optical.tif"))
    flat = (90.0 + np.random.default_rng(0).normal(0, 0.5, (1, 256, 256))).astype(np.float32)
    pm = prepare_and_match(opt, ov, flat, np.ones((256, 256), bool), "Float32", get_describer("area"), EngineConfig(engine="area"))
    assert pm.verdict.verdict != "registered"


def test_rescaled_maps_points_and_transform_to_the_finer_grid():
    from promptmid.geometry.fit import FitResult

    kp_o, kp_s = np.array([[10.0, 20.0], [30.0, 5.0]]), np.array([[11.0, 19.0], [31.0, 4.0]])
    m = np.array([[1.0, 0, -1.0], [0, 1.0, 1.0], [0, 0, 1]])  # SAR -> optical on the coarse grids
    pm = PairMatch(kp_o, kp_s, np.array([[0, 0], [1, 1]]), np.ones(2), FitResult(m, np.ones(2, bool), np.zeros(2, np.float32)))
    fine = pm.rescaled((2.0, 2.0), (4.0, 3.0))
    # pixel-index convention: x' = (x + 0.5) f - 0.5
    np.testing.assert_allclose(fine.kp_optical, (kp_o + 0.5) * 2.0 - 0.5)
    np.testing.assert_allclose(fine.kp_sar, (kp_s + 0.5) * [4.0, 3.0] - 0.5)
    # the conjugated transform still maps each fine SAR point onto its fine optical partner
    np.testing.assert_allclose(apply_h(fine.fit.matrix, fine.kp_sar), fine.kp_optical, atol=1e-9)
    assert pm.rescaled((1.0, 1.0), (1.0, 1.0)) is pm
