import numpy as np
from rasters import textured

from promptmid.keypoints import PCFastConfig, PhaseCongruencyConfig, detect_pcfast, phase_congruency


def test_phase_congruency_peaks_on_a_step_edge_whatever_the_contrast():
    img = np.zeros((64, 64), np.float32)
    img[:, 32:] = 1.0
    noise = np.random.default_rng(0).normal(0, 0.01, img.shape).astype(np.float32)
    for contrast in (1.0, 0.05):
        pc = phase_congruency(img * contrast + 0.2 + noise * contrast, PhaseCongruencyConfig())
        profile = pc.max_moment[32, 8:56]  # the FFT wraps: the image border is an edge too (hence PC-FAST's border mask)
        assert abs(int(np.argmax(profile)) + 8 - 31.5) <= 1.0
        assert profile.max() > 0.9 and profile[:16].max() < 0.1
        assert pc.orient_amplitude.shape == (6, 64, 64)


def test_our_float32_phase_congruency_matches_the_package_on_a_real_sar_image(small_pair):
    from promptmid.io.rasters import read_pixels

    sar, _, _ = read_pixels(str(small_pair / "sar.tif"))
    img = sar[0, :200, :240] / sar.max()  # not square: rows and columns must not be swapped
    ours = phase_congruency(img, PhaseCongruencyConfig())
    ref = phase_congruency(img, PhaseCongruencyConfig(backend="package"))
    assert ref.max_moment.max() == 1.0 and ref.min_moment.max() > 0.05
    np.testing.assert_allclose(ours.max_moment, ref.max_moment, atol=1e-4)
    np.testing.assert_allclose(ours.min_moment, ref.min_moment, atol=1e-4)
    np.testing.assert_allclose(ours.orient_amplitude, ref.orient_amplitude, atol=1e-4 * ref.orient_amplitude.max())


def test_pcfast_respects_budget_border_and_nodata():
    pc = phase_congruency(textured(256, 256), PhaseCongruencyConfig())
    valid = np.ones((256, 256), bool)
    valid[:, 200:] = False
    cfg = PCFastConfig(max_keypoints=300, border=10)
    pts, score = detect_pcfast(pc.max_moment, valid, cfg)
    assert 100 < len(pts) <= 300
    assert np.all(np.diff(score) <= 0)  # strongest first
    assert pts[:, 0].max() < 200 - 10 and pts.min() >= 10


def test_pcfast_spreads_keypoints_over_the_grid():
    img = textured(256, 256)
    img[:128, :128] += np.random.default_rng(0).random((128, 128)).astype(np.float32)  # busy quadrant
    pc = phase_congruency(img / img.max(), PhaseCongruencyConfig())
    pts, _ = detect_pcfast(pc.max_moment, None, PCFastConfig(max_keypoints=200, grid_cells=4))
    quadrants = np.bincount((pts[:, 1] >= 128).astype(int) * 2 + (pts[:, 0] >= 128).astype(int), minlength=4)
    assert quadrants.min() >= 20, quadrants


def test_no_keypoints_on_a_flat_image():
    pts, score = detect_pcfast(np.zeros((64, 64), np.float32), None, PCFastConfig())
    assert pts.shape == (0, 2) and score.shape == (0,)
