import numpy as np
import pytest

from promptmid.geometry.fit import FitConfig, apply_h, fit_transform


@pytest.mark.parametrize("model", ["similarity", "affine", "homography"])
def test_recovers_transform_despite_outliers(model):
    rng = np.random.default_rng(0)
    a = np.radians(7.0)
    truth = np.array([[0.9 * np.cos(a), -0.9 * np.sin(a), 12.0], [0.9 * np.sin(a), 0.9 * np.cos(a), -30.0], [0, 0, 1]])
    src = rng.uniform(0, 500, (200, 2))
    dst = apply_h(truth, src) + rng.normal(0, 0.3, (200, 2))
    dst[:80] = rng.uniform(0, 500, (80, 2))  # 40 % outliers
    fit = fit_transform(src, dst, FitConfig(model=model))
    assert fit is not None
    assert fit.inliers[80:].mean() > 0.95 and fit.inliers[:80].mean() < 0.1
    grid = np.mgrid[0:500:50, 0:500:50].reshape(2, -1).T
    assert np.abs(apply_h(fit.matrix, grid) - apply_h(truth, grid)).max() < 0.5


def test_too_few_points_or_unknown_model():
    assert fit_transform(np.zeros((3, 2)), np.zeros((3, 2))) is None
    with pytest.raises(ValueError):
        fit_transform(np.zeros((10, 2)), np.zeros((10, 2)), FitConfig(model="spline"))
