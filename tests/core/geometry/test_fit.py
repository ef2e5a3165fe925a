import numpy as np
import pytest

from promptmid.geometry.fit import (FitConfig, apply_h, expected_error, fit_tie_points, fit_transform,
                                    least_squares_similarity)


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


def _similarity(scale: float, deg: float, tx: float, ty: float) -> np.ndarray:
    a = np.radians(deg)
    return np.array([[scale * np.cos(a), -scale * np.sin(a), tx], [scale * np.sin(a), scale * np.cos(a), ty], [0, 0, 1.0]])


def test_least_squares_similarity_is_exact_on_exact_points():
    truth = _similarity(0.93, -6.0, 17.5, -4.25)
    src = np.array([[0, 0], [100, 0], [0, 80], [100, 80], [37, 12.0]])
    assert np.allclose(least_squares_similarity(src, apply_h(truth, src)), truth, atol=1e-9)


def test_final_similarity_refits_the_affine_inliers_and_keeps_the_affine():
    rng = np.random.default_rng(1)
    truth = _similarity(0.9, 4.0, 20.0, -10.0)
    src = rng.uniform(0, 400, (150, 2))
    dst = apply_h(truth, src)
    dst[:, 0] += 0.01 * (src[:, 1] - 200)  # a slight shear the affine follows and the similarity does not
    dst[:40] = rng.uniform(0, 400, (40, 2))  # outliers
    affine = fit_tie_points(src, dst, FitConfig(final="affine"))
    sim = fit_tie_points(src, dst, FitConfig(final="similarity"))
    assert affine.robust is None and sim.robust is not None
    assert np.array_equal(sim.robust, affine.matrix) and np.array_equal(sim.inliers, affine.inliers)
    lin = sim.matrix[:2, :2]
    assert np.isclose(lin[0, 0], lin[1, 1]) and np.isclose(lin[0, 1], -lin[1, 0])  # a similarity
    assert np.abs(sim.matrix[:2, :2] - truth[:2, :2]).max() < 0.01
    inl = sim.inliers
    assert np.allclose(sim.residuals, np.linalg.norm(apply_h(sim.matrix, src) - dst, axis=1), atol=1e-4)
    assert np.abs(affine.matrix[0, 1] - truth[0, 1]) > 0.005  # the affine took the shear
    assert inl[40:].mean() > 0.95
    with pytest.raises(ValueError):
        fit_tie_points(src, dst, FitConfig(final="spline"))


def test_a_mirrored_fit_has_no_similarity():
    """A reflection (a SAR flipped against the optical) cannot be a rotation + scale: no fit, rather than the
    least-squares similarity of a reflection (scale near 0, a meaningless warp)."""
    rng = np.random.default_rng(2)
    src = rng.uniform(0, 400, (80, 2))
    dst = src * [1.0, -1.0] + [0.0, 400.0]  # flipped upside down
    assert fit_tie_points(src, dst, FitConfig(final="affine")) is not None
    assert fit_tie_points(src, dst, FitConfig(final="similarity")) is None


@pytest.mark.parametrize("model", ["affine", "similarity"])
def test_expected_error_matches_the_scatter_of_repeated_fits(model):
    rng = np.random.default_rng(2)
    truth = _similarity(1.0, 3.0, 5.0, -2.0)
    src = rng.uniform(100, 300, (40, 2))  # tie points in the middle; judged at the corners too
    at = np.array([[0, 0], [400, 0], [0, 400], [400, 400], [200, 200.0]])
    errors, predicted = [], []
    for _ in range(400):
        dst = apply_h(truth, src) + rng.normal(0, 0.5, src.shape)
        if model == "similarity":
            m = least_squares_similarity(src, dst)
        else:
            a, *_ = np.linalg.lstsq(np.column_stack([src, np.ones(len(src))]), dst, rcond=None)
            m = np.vstack([a.T, [0, 0, 1.0]])
        errors.append(np.linalg.norm(apply_h(m, at) - apply_h(truth, at), axis=1))
        predicted.append(expected_error(src, dst, m, at, model))
    empirical = np.sqrt(np.mean(np.square(errors), axis=0))
    assert np.allclose(np.mean(predicted, axis=0), empirical, rtol=0.15)
    assert empirical[0] > 1.5 * empirical[4]  # worse where the points do not reach


def test_a_similarity_is_known_better_than_an_affine_from_the_same_points():
    rng = np.random.default_rng(4)
    src = rng.uniform(0, 100, (30, 2))
    dst = src + rng.normal(0, 0.5, src.shape)
    at = np.array([[-50, -50], [150, 150.0]])
    m = least_squares_similarity(src, dst)
    assert np.all(expected_error(src, dst, m, at, "similarity") < expected_error(src, dst, m, at, "affine"))
