import numpy as np
import pytest
from rasters import textured

from promptmid.config import EngineConfig
from promptmid.descriptors import Describer, available_engines, get_describer
from promptmid.descriptors.classical import ClassicalDescriber
from promptmid.errors import InputError
from promptmid.matching import mutual_nearest_neighbours
from promptmid.prepare import prepare_optical, prepare_sar


def _prepared(img, modality="optical"):
    cfg = EngineConfig()
    valid = np.ones(img.shape, bool)
    if modality == "optical":
        return prepare_optical(img[None], valid, cfg)
    return prepare_sar(img[None], valid, "Float32", cfg)


def test_shape_norm_and_empty():
    d = ClassicalDescriber()
    assert isinstance(d, Describer)
    img = _prepared(textured())
    desc = d.describe(img, np.array([[100.0, 100.0], [20.0, 30.0]]))
    assert desc.shape == (2, 6 * 6 * 6) and desc.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(desc, axis=1), 1.0, rtol=1e-5)
    assert d.describe(img, np.zeros((0, 2))).shape == (0, 216)


def test_descriptors_follow_a_translation_and_ignore_contrast_inversion():
    base = textured(300, 300, seed=3)
    shifted = np.roll(base, (7, -11), axis=(0, 1))
    a, b = _prepared(base), _prepared(1.0 - shifted, "sar")  # inverted contrast, like SAR vs optical edges
    rng = np.random.default_rng(0)
    pts = rng.uniform(60, 220, (200, 2))
    d = ClassicalDescriber()
    pairs, _ = mutual_nearest_neighbours(d.describe(a, pts), d.describe(b, pts + [-11, 7]))
    correct = np.mean(pairs[:, 0] == pairs[:, 1])
    assert len(pairs) > 120 and correct > 0.9


def test_registry_lists_engines_and_refuses_unknown():
    assert "classical" in available_engines()
    assert get_describer("classical").name == "classical"
    with pytest.raises(InputError, match="Available engines: .*classical"):
        get_describer("nope")


def test_sift_peer_brings_its_own_keypoints_and_ratio():
    from promptmid.descriptors.sift import SiftDescriber

    img = _prepared(textured(200, 200, seed=4))
    d = get_describer("sift")
    assert isinstance(d, SiftDescriber) and d.ratio == 0.8 and d.guided is False
    kp = d.detect(img)
    desc = d.describe(img, kp)
    assert len(kp) > 20 and desc.shape == (len(kp), 128)
    with pytest.raises(ValueError):
        d.describe(img, kp[:3])
