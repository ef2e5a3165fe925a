import cv2
import torch
import numpy as np
import pytest

from promptmid.dense.cfog import CfogFeaturizer
from promptmid.descriptors.base import PreparedImage
from promptmid.geometry.fit import apply_h
from promptmid.guided import GuidedConfig, TiePoints, descriptor_tie_points, rotation_of, template_tie_points
from promptmid.io.normalize import OpticalNormConfig, optical_to_gray
from promptmid.io.rasters import read_pixels


def _pair(small_pair, angle=4.0, scale=0.92, shift=(3.3, -2.1)):
    bands, valid, _ = read_pixels(str(small_pair / "optical.tif"))
    gray = optical_to_gray(bands, valid, OpticalNormConfig())
    a = cv2.getRotationMatrix2D((127.5, 127.5), angle, scale)
    a[:, 2] += shift
    warped = cv2.warpAffine(gray, a, (256, 256), flags=cv2.INTER_LINEAR)
    wv = cv2.warpAffine(np.ones_like(gray), a, (256, 256), flags=cv2.INTER_NEAREST) > 0.5
    f = CfogFeaturizer()
    return f.dense_map(PreparedImage(warped, wv, "optical", None)), f.dense_map(PreparedImage(gray, valid, "optical", None)), np.vstack([a, [0, 0, 1]])


def _grid_points():
    return np.stack(np.meshgrid(np.arange(40, 220, 12), np.arange(40, 220, 12)), -1).reshape(-1, 2).astype(float)


def test_rotation_of_reads_the_angle_back():
    a = np.vstack([cv2.getRotationMatrix2D((0, 0), -7.0, 0.9), [0, 0, 1]])  # OpenCV angles are counter-clockwise
    assert rotation_of(a) == pytest.approx(7.0)


def test_template_tie_points_land_on_the_true_positions_from_a_wrong_prior(small_pair):
    mo, ms, truth = _pair(small_pair)
    prior = truth.copy()
    prior[0, 2] += 3.0  # the global estimate is 3 px off in x and 2 in y
    prior[1, 2] -= 2.0
    tp = template_tie_points(mo, ms, prior, _grid_points(), GuidedConfig())
    assert len(tp) > 100
    err = np.linalg.norm(apply_h(truth, tp.sar) - tp.optical, axis=1)
    assert np.median(err) < 0.3 and np.percentile(err, 90) < 1.0  # sub-pixel, not the prior's 3.6 px


def test_points_whose_window_leaves_the_image_are_dropped(small_pair):
    mo, ms, truth = _pair(small_pair)
    tp = template_tie_points(mo, ms, truth, np.array([[2.0, 2.0], [128.0, 128.0]]), GuidedConfig())
    assert len(tp) <= 1 and (len(tp) == 0 or np.allclose(tp.sar[0], [128, 128]))
    assert len(template_tie_points(mo, ms, truth, np.zeros((0, 2)), GuidedConfig())) == 0


def test_descriptor_tie_points_only_pair_candidates_near_the_prediction():
    kp_sar = np.array([[10.0, 10.0], [50.0, 50.0], [90.0, 20.0]])
    kp_opt = np.array([[12.0, 11.0], [52.0, 49.0], [20.0, 90.0]])
    d = np.eye(3, dtype=np.float32)
    h = np.array([[1, 0, 2.0], [0, 1, 0.5], [0, 0, 1]])
    # descriptors say 0<->0, 1<->1 and 2<->2, but optical keypoint 2 is far from where SAR keypoint 2 must go
    tp = descriptor_tie_points(kp_opt, d, kp_sar, d, h, radius_px=4.0)
    assert [tuple(p) for p in tp.sar] == [(10.0, 10.0), (50.0, 50.0)]
    np.testing.assert_allclose(tp.optical, kp_opt[:2])
    np.testing.assert_allclose(tp.score, [1.0, 1.0])
    assert len(descriptor_tie_points(kp_opt[:0], d[:0], kp_sar, d, h, 4.0)) == 0


def test_descriptor_tie_points_equal_the_all_pairs_mutual_nearest_neighbours():
    # the grid search for candidates must find exactly what the all-pairs distance matrix finds
    rng = np.random.default_rng(3)
    kp_sar, kp_opt = rng.uniform(0, 300, (900, 2)), rng.uniform(-5, 305, (1100, 2))
    d_sar, d_opt = rng.normal(size=(900, 16)).astype(np.float32), rng.normal(size=(1100, 16)).astype(np.float32)
    h = np.array([[0.98, -0.05, 4.0], [0.05, 0.98, -2.5], [0, 0, 1]])
    for radius in (3.0, 7.5):
        near = np.linalg.norm(apply_h(h, kp_sar)[:, None] - kp_opt[None], axis=2) <= radius
        sim = np.where(near, d_sar @ d_opt.T, -np.inf)
        bo, bs = sim.argmax(1), sim.argmax(0)
        want = {(i, int(bo[i])) for i in range(len(kp_sar)) if near[i].any() and bs[bo[i]] == i}
        tp = descriptor_tie_points(kp_opt, d_opt, kp_sar, d_sar, h, radius)
        got = {(int(np.flatnonzero((kp_sar == s).all(1))[0]), int(np.flatnonzero((kp_opt == o).all(1))[0]))
               for s, o in zip(tp.sar, tp.optical)}
        assert len(want) > 50 and got == want


def test_tie_points_concatenate():
    a = TiePoints(np.ones((2, 2)), np.zeros((2, 2)), np.array([0.5, 0.6], np.float32))
    b = a.concat(TiePoints.empty())
    assert len(b) == 2 and b.score.dtype == np.float32


def test_zncc_matches_a_direct_computation_with_vector_or_channel_means():
    from promptmid.guided import _zncc

    g = torch.Generator().manual_seed(0)
    tmpl, search = torch.randn(2, 3, 5, 5, generator=g), torch.randn(2, 3, 9, 9, generator=g) + torch.tensor([0.0, 3.0, -2.0])[:, None, None]
    mask = (torch.rand(2, 5, 5, generator=g) > 0.2).float()
    for per_channel in (False, True):
        got = _zncc(tmpl * mask[:, None], search, mask, per_channel)
        for n in range(2):
            m = mask[n].bool()
            for dy, dx in ((0, 0), (2, 3), (4, 4)):
                a, b = tmpl[n][:, m], search[n, :, dy:dy + 5, dx:dx + 5][:, m]
                if per_channel:
                    a, b = a - a.mean(1, keepdim=True), b - b.mean(1, keepdim=True)
                else:
                    a, b = a - a.mean(), b - b.mean()
                ref = (a * b).sum() / (a.norm() * b.norm())
                assert torch.isclose(got[n, dy, dx], ref, atol=1e-4), (per_channel, n, dy, dx)
