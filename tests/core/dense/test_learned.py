"""Learned dense maps behind the dense-feature interface, and who gets them."""

import numpy as np
import torch

from promptmid.config import EngineConfig
from promptmid.dense.cfog import CfogFeaturizer
from promptmid.dense.learned import LearnedFeaturizer
from promptmid.descriptors.base import PreparedImage
from promptmid.descriptors.learned import LearnedDescriber
from promptmid.descriptors.registry import get_describer
from promptmid.evaluation.protocol import ProtocolConfig, evaluate_pair
from promptmid.keypoints.phase_congruency import PCMaps
from promptmid.models.network import PromptMIDNet, dense_config
from promptmid.registration import dense_featurizer

_NO_PC = PCMaps(np.zeros((0, 0), np.float32), np.zeros((0, 0), np.float32), np.zeros((0, 0, 0), np.float32))


def _image(modality: str, seed: int = 0) -> PreparedImage:
    rng = np.random.default_rng(seed)
    gray = rng.uniform(0.1, 0.9, (70, 90)).astype(np.float32)
    valid = np.ones_like(gray, bool)
    valid[:, :5] = False
    color = np.stack([gray] * 3) if modality == "optical" else None
    return PreparedImage(gray, valid, modality, _NO_PC, color, "city" if modality == "sar" else None)


def test_an_untrained_cfog_residual_model_gives_exactly_the_cfog_maps():
    torch.manual_seed(0)
    net = PromptMIDNet(dense_config("small"))
    for modality in ("sar", "optical"):
        learned = LearnedFeaturizer(LearnedDescriber(net, "t")).dense_map(_image(modality))
        cfog = CfogFeaturizer().dense_map(_image(modality))
        assert learned.features.shape == cfog.features.shape == (9, 70, 90) and learned.stride == 1
        assert learned.learned and learned.n_orientations == 9 and learned.orientation_period == 180.0
        assert torch.allclose(learned.features, cfog.features, atol=1e-6)
        assert torch.equal(learned.valid, cfog.valid) and float(learned.features[:, :, :5].abs().max()) == 0.0


def test_free_learned_maps_are_resampled_to_the_pixel_grid():
    net = PromptMIDNet(dense_config("small", residual=False))
    m = LearnedFeaturizer(LearnedDescriber(net, "t")).dense_map(_image("optical"))
    assert m.features.shape == (16, 70, 90) and m.n_orientations == 0 and m.learned


def test_only_models_trained_for_dense_use_replace_the_cfog_maps():
    assert isinstance(dense_featurizer(get_describer("area"), EngineConfig()), CfogFeaturizer)
    assert isinstance(dense_featurizer(get_describer("lite"), EngineConfig()), CfogFeaturizer)  # trained on points only
    assert isinstance(dense_featurizer(get_describer("dense"), EngineConfig()), LearnedFeaturizer)
    assert isinstance(dense_featurizer(get_describer("default"), EngineConfig()), LearnedFeaturizer)  # the shipped model is the dense one


def test_the_shipped_default_engine_recovers_a_known_warp_of_a_real_pair(small_pair):
    res = evaluate_pair(str(small_pair), get_describer("default"), EngineConfig(), ProtocolConfig(), np.random.default_rng(3))
    assert res.fit_err_px < 3.0, res


def test_the_network_runs_once_per_image_for_maps_and_descriptors():
    torch.manual_seed(0)
    net = PromptMIDNet(dense_config("small"))
    calls = []
    net.sar.register_forward_hook(lambda *_: calls.append(1))
    describer = LearnedDescriber(net, "t")
    image = _image("sar")
    maps = LearnedFeaturizer(describer).dense_map(image)
    kp = np.array([[20.0, 30.0], [50.5, 40.0]], np.float32)
    desc = describer.describe(image, kp)
    assert len(calls) == 1 and maps.features.shape == (9, 70, 90)
    fresh = LearnedDescriber(net, "t").describe(_image("sar"), kp)  # a new image: computed again, same values
    assert len(calls) == 2 and np.allclose(desc, fresh)
    other = _image("sar")
    other.land_use = "water"  # the prompt is part of the SAR branch's input
    describer.describe(other, kp)
    assert len(calls) == 3
