import numpy as np
import pytest

from promptmid.dense.cfog import CfogConfig, CfogFeaturizer
from promptmid.descriptors.base import PreparedImage


def _prep(img, modality="optical", valid=None):
    return PreparedImage(img.astype(np.float32), np.ones(img.shape, bool) if valid is None else valid, modality, None)


def test_a_vertical_edge_lights_the_horizontal_gradient_channel():
    img = np.zeros((64, 64), np.float32)
    img[:, 32:] = 1.0
    m = CfogFeaturizer().dense_map(_prep(img))
    assert m.features.shape == (9, 64, 64) and m.stride == 1 and m.n_orientations == 9
    at_edge = m.features[:, 32, 32].numpy()
    assert int(np.argmax(at_edge)) == 0  # bin 0: gradient along x
    assert at_edge[0] > 2 * at_edge[4]  # and not the orthogonal one (bin 4-5: along y)
    assert np.linalg.norm(at_edge) == pytest.approx(1.0, abs=0.15)  # normalised per pixel


def test_sar_features_depend_on_ratios_not_levels():
    """On log(SAR), a x2 step looks nearly the same at any brightness (multiplicative contrast; the log's
    small floor keeps it from being exact)."""
    cfg = CfogConfig()
    f = CfogFeaturizer(cfg)
    a = np.full((64, 64), 0.1, np.float32)
    a[:, 32:] = 0.2
    b = np.full((64, 64), 0.4, np.float32)
    b[:, 32:] = 0.8
    fa = f.dense_map(_prep(a, "sar")).features[:, 32, 20:44].numpy()
    fb = f.dense_map(_prep(b, "sar")).features[:, 32, 20:44].numpy()
    cos = (fa * fb).sum(0) / (np.linalg.norm(fa, axis=0) * np.linalg.norm(fb, axis=0) + 1e-9)
    assert cos.min() > 0.9


def test_nodata_border_is_not_an_edge():
    img = np.full((64, 64), 0.5, np.float32)
    img += np.random.default_rng(0).normal(0, 0.01, img.shape).astype(np.float32)
    valid = np.ones((64, 64), bool)
    valid[:, 40:] = False
    img[~valid] = 0.0  # what readers leave in nodata
    m = CfogFeaturizer().dense_map(_prep(img, valid=valid))
    assert float(m.features[:, :, 40:].abs().max()) == 0.0  # nothing outside the data
    assert not m.valid[:, 40:].any() and m.valid[:, :38].all()
    energy_near_border = m.features[:, 10:54, 36:40].numpy()
    assert energy_near_border[0].mean() < 0.5  # no strong vertical "edge" where the data stops


def test_maps_are_cached_per_image():
    img = np.random.default_rng(1).random((32, 32)).astype(np.float32)
    p = _prep(img)
    f = CfogFeaturizer()
    assert f.dense_map(p) is f.dense_map(p)
