import math

import cv2
import numpy as np
import pytest

from promptmid.dense.cfog import CfogFeaturizer
from promptmid.descriptors.base import PreparedImage
from promptmid.geometry.fit import apply_h
from promptmid.io.normalize import OpticalNormConfig, normalize_sar, optical_to_gray, SarNormConfig
from promptmid.io.rasters import read_pixels
from promptmid.dense.base import rotate_channels
from promptmid.search import Hypothesis, SearchConfig, georef_search, global_search

CORNERS = np.array([[0, 0], [255, 0], [0, 255], [255, 255], [127.5, 127.5]])


def _maps(opt, opt_valid, sar, sar_valid, sar_modality="optical"):
    f = CfogFeaturizer()
    return (f.dense_map(PreparedImage(opt, opt_valid, "optical", None)),
            f.dense_map(PreparedImage(sar, sar_valid, sar_modality, None)))


def _warped(gray, angle, scale, shift):
    a = cv2.getRotationMatrix2D(((gray.shape[1] - 1) / 2, (gray.shape[0] - 1) / 2), angle, scale)
    a[:, 2] += shift
    w = cv2.warpAffine(gray, a, gray.shape[::-1], flags=cv2.INTER_LINEAR)
    v = cv2.warpAffine(np.ones_like(gray), a, gray.shape[::-1], flags=cv2.INTER_NEAREST) > 0.5
    return w, v, np.vstack([a, [0, 0, 1]])


def test_hypothesis_matrix_is_a_similarity_about_the_centre():
    h = Hypothesis(rotation_deg=30.0, scale=0.5, tx=2.0, ty=-1.0, score=0.0)
    m = h.matrix((101, 201))
    np.testing.assert_allclose(apply_h(m, [[100, 50]]), [[102, 49]])  # centre -> centre + t
    np.testing.assert_allclose(np.linalg.det(m[:2, :2]), 0.25)


def test_channel_rotation_is_a_cyclic_shift_of_orientation_bins():
    import torch

    f = torch.zeros(1, 9, 1, 1)
    f[0, 2] = 1.0
    out = rotate_channels(f, [20.0], 9, 180.0)  # one bin width
    assert out[0, 3, 0, 0] == pytest.approx(1.0) and out.sum() == pytest.approx(1.0)
    half = rotate_channels(f, [-10.0], 9, 180.0)
    assert half[0, 1, 0, 0] == pytest.approx(0.5) and half[0, 2, 0, 0] == pytest.approx(0.5)


@pytest.mark.parametrize("angle,scale,shift", [(7.0, 0.86, (0.0, 0.0)), (-9.5, 0.97, (6.0, -4.0)), (2.0, 0.8, (0.0, 0.0))])
def test_known_similarity_of_a_real_image_is_found(small_pair, angle, scale, shift):
    bands, valid, _ = read_pixels(str(small_pair / "optical.tif"))
    gray = optical_to_gray(bands, valid, OpticalNormConfig())
    warped, wvalid, truth = _warped(gray, angle, scale, shift)
    mo, ms = _maps(warped, wvalid, gray, valid)
    r = global_search(mo, ms, gray.shape, SearchConfig())
    est = r.best.matrix(gray.shape)
    err = np.linalg.norm(apply_h(est, CORNERS) - apply_h(truth, CORNERS), axis=1)
    assert err.max() < 1.5, (r.best, err)
    assert r.peak_ratio > 1.03  # the runner-up pose (elsewhere) scores lower, even on a smooth self pair


def test_real_sar_onto_its_optical_under_the_paper_warp(small_pair):
    """Cross-modal: the pair's SAR against its optical rotated by 6 degrees and scaled by 0.9."""
    ob, ov, _ = read_pixels(str(small_pair / "optical.tif"))
    sb, sv, _ = read_pixels(str(small_pair / "sar.tif"))
    gray = optical_to_gray(ob, ov, OpticalNormConfig())
    sar = normalize_sar(sb[0], sv, "Byte", SarNormConfig())
    warped, wvalid, truth = _warped(gray, 6.0, 0.9, (0.0, 0.0))
    mo, ms = _maps(warped, wvalid, sar, sv, "sar")
    r = global_search(mo, ms, sar.shape, SearchConfig())
    err = np.linalg.norm(apply_h(r.best.matrix(sar.shape), CORNERS) - apply_h(truth, CORNERS), axis=1)
    assert err.max() < 4.0, (r.best, err)


def test_georef_search_stays_near_the_identity():
    g = georef_search(SearchConfig())
    assert g.max_rotation_deg == 3.0 and g.scale_range == (0.95, 1.05) and g.max_shift_px == 48.0
    rng = np.random.default_rng(0)
    img = cv2.GaussianBlur(rng.random((128, 128)).astype(np.float32), (0, 0), 2)
    shifted = np.roll(img, (5, -7), axis=(0, 1))
    ones = np.ones_like(img, bool)
    mo, ms = _maps(shifted, ones, img, ones)
    near = global_search(mo, ms, img.shape, g)
    assert abs(near.best.tx + 7) < 1.0 and abs(near.best.ty - 5) < 1.0
    boxed = global_search(mo, ms, img.shape, SearchConfig(max_shift_px=3.0, max_rotation_deg=0.0, scale_range=(1.0, 1.0)))
    assert math.hypot(boxed.best.tx, boxed.best.ty) <= 3.0 + 1.0  # the window holds, whatever the peak


def test_unrelated_images_score_low(small_pair, data_root):
    ob, ov, _ = read_pixels(str(small_pair / "optical.tif"))
    other = data_root / "test" / "s1s2_163" / "sar.tif"
    sb, sv, _ = read_pixels(str(other), max_side=256)
    gray = optical_to_gray(ob, ov, OpticalNormConfig())
    sar = normalize_sar(sb[0], sv, "Byte", SarNormConfig())
    mo, ms = _maps(gray, ov, sar, sv, "sar")
    r = global_search(mo, ms, sar.shape, SearchConfig())
    same_mo, same_ms = _maps(*_warped(gray, 5.0, 0.9, (0, 0))[:2], gray, ov)
    same = global_search(same_mo, same_ms, gray.shape, SearchConfig())
    assert r.best.score < 0.5 * same.best.score
