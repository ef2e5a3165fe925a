import pytest
import torch

from promptmid.models.cbam import CBAM
from promptmid.models.msaa import MSAA, MeanAggregation, to_grid
from promptmid.models.prompts import LandUseFiLM, land_use_index, prompt_text
from promptmid.models.vgg import VGG19_LAYERS, VGG19_TAPS, VGGFeatures, relu_indices
from promptmid.errors import InputError


def test_vgg19_layout_matches_torchvision_indices_and_loads_a_state_dict():
    vgg = VGGFeatures()
    assert relu_indices(VGG19_LAYERS)[3] == 8 and VGG19_TAPS == (8, 17, 26)
    assert vgg.out_channels == [128, 256, 512]
    # A torchvision-format state dict (features.<i>.weight/bias, plus a classifier that must be ignored)
    full = VGGFeatures(VGG19_LAYERS, [len(VGG19_LAYERS) * 2 - 2])
    sd = {k: torch.randn_like(v) for k, v in full.state_dict().items()}
    sd["classifier.0.weight"] = torch.zeros(4096, 25088)
    assert "features.34.weight" in sd and "features.0.bias" in sd
    vgg.load_torchvision(sd)
    assert torch.equal(vgg.features[0].weight, sd["features.0.weight"])
    outs = vgg(torch.rand(1, 3, 64, 48))
    assert [o.shape[-2:] for o in outs] == [(32, 24), (16, 12), (8, 6)]
    bad = dict(sd)
    bad["features.0.weight"] = torch.zeros(1)
    with pytest.raises(ValueError, match="features.0.weight"):
        vgg.load_torchvision(bad)
    with pytest.raises(KeyError, match="lack"):
        vgg.load_torchvision({"classifier.0.weight": torch.zeros(1)})


def test_msaa_weights_sum_to_one_and_receive_gradients():
    m = MSAA([4, 8], [2, 8], 6, out_stride=2)
    feats = [torch.rand(1, 4, 16, 16, requires_grad=True), torch.rand(1, 8, 4, 4)]
    out = m(feats, (16, 16))
    assert out.shape == (1, 6, 16, 16)
    assert torch.isclose(m.scale_weights.sum(), torch.tensor(1.0))
    out.square().mean().backward()
    assert m.scale_logits.grad is not None and m.scale_logits.grad.abs().sum() > 0
    mean = MeanAggregation([4, 8], [2, 8], 6, 2)
    assert not mean.scale_logits.requires_grad


def test_to_grid_keeps_cells_aligned():
    # A stride-4 map whose cell j holds value j: pixel x sits in cell x // 4; on a stride-2 grid cell k covers
    # pixels [2k, 2k+2), centre 2k + 0.5 -> coarse cell coordinate (2k + 1) / 4 - 0.5.
    f = torch.arange(8.0).view(1, 1, 1, 8).expand(1, 1, 2, 8)
    g = to_grid(f, 4, 2, (4, 16))
    expected = torch.clamp((2 * torch.arange(16.0) + 1) / 4 - 0.5, 0, 7)
    assert torch.allclose(g[0, 0, 0], expected, atol=1e-5)


def test_cbam_changes_features_and_keeps_shape():
    torch.manual_seed(0)
    c = CBAM(32, reduction=4)
    x = torch.rand(2, 32, 8, 8)
    y = c(x)
    assert y.shape == x.shape and not torch.allclose(x, y)
    assert torch.all(y.abs() <= x.abs() + 1e-6)  # attention only rescales by sigmoid gates


def test_prompts_and_film():
    assert prompt_text("Water") == "a SAR image of water"
    assert prompt_text(None).endswith("others")
    with pytest.raises(InputError, match="farmland"):
        land_use_index("desert")
    film = LandUseFiLM([4], dim=3)
    x = [torch.rand(2, 4, 3, 3)]
    assert torch.equal(film(x, torch.tensor([0, 1]))[0], x[0])  # zero-init = identity
    film.to_affine[0].bias.data.normal_()
    y = film(x, torch.tensor([land_use_index("city"), land_use_index("water")]))[0]
    assert not torch.allclose(y[0], x[0][0])
